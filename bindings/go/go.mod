module sessync.dev/sessync

go 1.19
