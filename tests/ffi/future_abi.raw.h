#define SESSYNC_ERROR_MESSAGE_MAX 504

enum sessync_status
#if __STDC_VERSION__ >= 202311L
  : uint32_t
#endif // __STDC_VERSION__ >= 202311L
 {
  SESSYNC_STATUS_OK = 0,
  SESSYNC_STATUS_NOT_FOUND = 1,
};
#if __STDC_VERSION__ >= 202311L
typedef enum sessync_status sessync_status;
#else
typedef uint32_t sessync_status;
#endif // __STDC_VERSION__ >= 202311L

typedef struct sessync_store sessync_store;

typedef struct sessync_error {
  uint32_t status;
  uint32_t len;
  char message[504];
} sessync_error;

typedef void (*sessync_lock_callback)(void *userdata, sessync_status status, uint64_t token, const struct sessync_error *error);

typedef struct sessync_error2 {
  uint32_t status;
  char message[SESSYNC_ERROR_MESSAGE_MAX];
} sessync_error2;

sessync_status sessync_store_lock_async(const struct sessync_store *store, const char *id, sessync_lock_callback callback, void *userdata, struct sessync_error *error_out);

uint32_t sessync_x(const struct sessync_error2 *e);
