/*
 * dlopen_soname.c: loads the installed shared library at run time by its SONAME, as the
 * language bindings do (README, "Loading the library at run time"), and calls it through
 * dlsym. The program is not linked against sessync; tests/shared_lib.rs runs it with
 * LD_LIBRARY_PATH=<prefix>/lib after scripts/install.sh.
 *
 * Prints the file the loader picked ("loaded: <path>"), which the test compares with the
 * install prefix.
 */
#define _GNU_SOURCE /* dladdr */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sessync.h"

#define CHECK(expr)                                                                    \
  do {                                                                                 \
    if (!(expr)) {                                                                     \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #expr);         \
      exit(1);                                                                         \
    }                                                                                  \
  } while (0)

/* dlsym's object pointer into a function pointer without the cast ISO C forbids. */
static void sym(void *lib, const char *name, void *fn_out, size_t size) {
  void *p = dlsym(lib, name);
  if (p == NULL) {
    fprintf(stderr, "dlsym(%s): %s\n", name, dlerror());
    exit(1);
  }
  CHECK(size == sizeof p);
  memcpy(fn_out, &p, size);
}

int main(void) {
  void *lib = dlopen("libsessync.so.0", RTLD_NOW | RTLD_LOCAL);
  if (lib == NULL) {
    fprintf(stderr, "dlopen(libsessync.so.0): %s\n", dlerror());
    return 1;
  }

  /* The header's prototypes give the pointers' types: a changed signature fails here. */
  __typeof__(sessync_version_number) *version_number;
  __typeof__(sessync_store_open) *store_open;
  __typeof__(sessync_store_free) *store_free;
  __typeof__(sessync_status_str) *status_str;
  sym(lib, "sessync_version_number", &version_number, sizeof version_number);
  sym(lib, "sessync_store_open", &store_open, sizeof store_open);
  sym(lib, "sessync_store_free", &store_free, sizeof store_free);
  sym(lib, "sessync_status_str", &status_str, sizeof status_str);

  Dl_info info;
  void *addr;
  memcpy(&addr, &version_number, sizeof addr);
  CHECK(dladdr(addr, &info) != 0 && info.dli_fname != NULL);
  printf("loaded: %s\n", info.dli_fname);

  unsigned v = version_number();
  if (v != SESSYNC_VERSION_NUMBER) {
    fprintf(stderr, "library version %u, header version %u\n", v,
            (unsigned)SESSYNC_VERSION_NUMBER);
  }
  CHECK(v == SESSYNC_VERSION_NUMBER);
  CHECK(strcmp(status_str(SESSYNC_STATUS_NOT_FOUND), "not found") == 0);

  sessync_store *store = NULL;
  CHECK(store_open("mem://", NULL, &store, NULL) == SESSYNC_STATUS_OK);
  CHECK(store != NULL);
  store_free(store);

  printf("version: %u\n", v);
  CHECK(dlclose(lib) == 0);
  return 0;
}
