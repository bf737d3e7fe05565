/*
 * version.c: the header and the library linked agree on the version (SQLite's advice:
 * compare the header's number with the library's at run time).
 */
#include "check.h"

#define STR_(x) #x
#define STR(x) STR_(x)

int main(void) {
  CHECK(sessync_version_number() == SESSYNC_VERSION_NUMBER);
  CHECK(SESSYNC_VERSION_NUMBER == SESSYNC_VERSION_MAJOR * 1000000 +
                                      SESSYNC_VERSION_MINOR * 1000 + SESSYNC_VERSION_PATCH);

  char text[64];
  snprintf(text, sizeof text, "%d.%d.%d", SESSYNC_VERSION_MAJOR, SESSYNC_VERSION_MINOR,
           SESSYNC_VERSION_PATCH);
  const char *v = sessync_version();
  CHECK(v != NULL);
  if (strcmp(v, text) != 0) {
    fprintf(stderr, "library version %s, header version %s\n", v, text);
  }
  CHECK(strcmp(v, text) == 0);
  /* The same text, spelled by the preprocessor. */
  CHECK(strcmp(v, STR(SESSYNC_VERSION_MAJOR) "." STR(SESSYNC_VERSION_MINOR) "." STR(
                      SESSYNC_VERSION_PATCH)) == 0);
  /* Static: the same pointer every time. */
  CHECK(sessync_version() == v);

  printf("version: %s (%u)\n", v, (unsigned)sessync_version_number());
  return 0;
}
