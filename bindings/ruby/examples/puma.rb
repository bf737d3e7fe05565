# Puma in cluster mode: 4 worker processes (WEB_CONCURRENCY), each with its own store on
# the one sessyncd (Sessync::RackSession opens it in each worker, after the fork).
workers Integer(ENV.fetch("WEB_CONCURRENCY", 4))
threads 1, Integer(ENV.fetch("PUMA_THREADS", 5))
bind "tcp://127.0.0.1:#{ENV.fetch("PORT", 9292)}"
environment "production"
