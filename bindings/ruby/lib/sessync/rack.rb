# frozen_string_literal: true

require "digest"
require "rack"
require "rack/session/abstract/id"
require_relative "../sessync"

module Sessync
  # A Rack session middleware on a sessync store, in place of Rack::Session::Pool or a
  # Redis store: env["rack.session"] works as with Rack's own (Rack 2's
  # Abstract::PersistedSecure).
  #
  #   use Sessync::RackSession, url: "unix:///run/sessync.sock", expire_after: 3600
  #
  # Concurrent requests of one visitor lose nothing: the first access to the session
  # takes its lock (begin_id with the lock, waiting up to +lock_wait+ seconds), and the
  # commit at the end of the request writes only the keys that changed (a key whose JSON
  # differs from what was read is set, a key that is gone is removed) and releases the
  # lock. A request that raises, or whose session is not written (:skip), aborts: nothing
  # is written and the lock is released. A LockTimeout the app does not handle is answered
  # 503 with Retry-After: 1. A session first touched after the middleware returned (a
  # lazy body, an after-reply hook) is read without the lock and never written.
  #
  # Ids. The cookie holds the public id, 32 base64url characters from
  # sessync_id_generate; the store keeps the session under a private id derived from it,
  # the base64url SHA-256 of the public id (43 characters, a valid sessync id), so that
  # whoever reads the store cannot use its ids as cookies (Rack's own private_id,
  # "2::<hex>", does not fit sessync's id alphabet). A cookie naming no live session is
  # never adopted: the request gets a fresh id.
  #
  # Options: Rack's (:key, :path, :domain, :expire_after (seconds; also the session's own
  # idle TTL in the store), :secure, :httponly, :same_site, :renew, :drop, :skip, :defer),
  # and :store (a Sessync::Store, shared as it is: the caller opens one per process, after
  # fork; one opened before raises StoreClosed in a forked worker) or
  # :url with :store_options (the store is then opened lazily in each process, after a
  # prefork server's fork), :lock_wait (seconds, default the store's lock_wait, 10 s).
  class RackSession < Rack::Session::Abstract::PersistedSecure
    # The request's sessync session (the lock held) between find_session and the commit.
    ENV_KEY = "sessync.session"

    # Set once #context has returned: later loads take no lock.
    FINISHED_KEY = "sessync.finished"
    # The Retry-After of the 503 answering a LockTimeout (seconds).
    RETRY_AFTER = "1"

    Pending = Struct.new(:session, :public_id, :read)

    def initialize(app, options = {})
      options = options.dup
      @store = options.delete(:store)
      @url = options.delete(:url) || "mem://"
      @store_options = options.delete(:store_options) || {}
      @lock_wait = options.delete(:lock_wait)
      raise TypeError, ":store must be a Sessync::Store, not #{@store.class}" if @store && !@store.is_a?(Store)

      @owns_store = @store.nil?
      @store_pid = Process.pid if @store
      @store_mutex = Mutex.new
      super(app, options)
    end

    # The store of this process (opened on first use in each process when given :url).
    def store
      return @store if @store && (!@owns_store || @store_pid == Process.pid)

      @store_mutex.synchronize do
        unless @store && (!@owns_store || @store_pid == Process.pid)
          @store = Store.new(@url, **@store_options)
          @store_pid = Process.pid
        end
      end
      @store
    end

    # A fresh public id (a Rack::Session::SessionId) from sessync_id_generate.
    def generate_sid(*)
      Rack::Session::SessionId.new(Sessync.generate_id)
    end

    # Runs the request. A LockTimeout the app does not handle (the session's lock was not
    # free within +lock_wait+) is answered 503 with Retry-After. Whatever session is still
    # pending is aborted at the end, and the request is marked finished: a session first
    # touched after this returns (a lazy body, an after-reply hook) is read without the
    # lock and nothing of it is written.
    def context(env, app = @app)
      super
    rescue LockTimeout => e
      env[Rack::RACK_ERRORS]&.puts("sessync: #{e.class}: #{e.message}")
      [503, { "content-type" => "text/plain", "retry-after" => RETRY_AFTER }, ["Service Unavailable\n"]]
    ensure
      env[FINISHED_KEY] = true
      release(env)
    end

    # The id under which the store keeps the session of a public id.
    def self.storage_id(public_id)
      [Digest::SHA256.digest(public_id)].pack("m0").tr("+/", "-_").delete("=")
    end

    private

    def public_id(sid)
      sid.respond_to?(:public_id) ? sid.public_id : sid.to_s
    end

    def begin_locked(public_id)
      store.begin_id(self.class.storage_id(public_id), lock: true, wait: @lock_wait)
    end

    # Begins the locked session of +public_id+ and records it in env (where #release finds
    # it) with interrupts deferred, so that no exception can come between the two.
    def begin_pending(req, public_id)
      Thread.handle_interrupt(Object => :never) do
        session = begin_locked(public_id)
        req.set_header(ENV_KEY, Pending.new(session, public_id, {}))
        session
      end
    end

    def find_session(req, sid)
      release(req.env) # a reload in the same request starts over
      return find_session_unlocked(sid) if req.get_header(FINISHED_KEY)

      session = nil
      if sid && !public_id(sid).empty?
        session = begin_pending(req, public_id(sid))
        if session.new? # names no live session: never adopt the client's id
          release(req.env)
          session = nil
        end
      end
      unless session
        sid = generate_sid
        session = begin_pending(req, sid.public_id)
      end
      begin
        data = session.to_h
        req.get_header(ENV_KEY).read = data.transform_values { |v| Util.dump(v) }
      rescue Exception # rubocop:disable Lint/RescueException -- abort on anything, then re-raise
        release(req.env)
        raise
      end
      [sid, data]
    end

    # A load after the response (the request is finished, nothing will be committed): the
    # data without the lock, and the session ended at once.
    def find_session_unlocked(sid)
      if sid && !public_id(sid).empty?
        session = store.begin_id(self.class.storage_id(public_id(sid)), lock: false, wait: @lock_wait)
        begin
          return [sid, session.to_h] unless session.new?
        ensure
          session.abort_quietly
        end
      end
      [generate_sid, {}]
    end

    def write_session(req, sid, data, options)
      pending = req.get_header(ENV_KEY)
      if pending.nil? || pending.public_id != public_id(sid)
        release(req.env)
        # A renewed id (or a write without a load): a new session under that id.
        begin_pending(req, public_id(sid))
        pending = req.get_header(ENV_KEY)
      end
      session = pending.session
      begin
        now = {}
        data.each { |key, value| now[key.to_s] = Util.dump(value) }
        now.each { |key, json| session.set_json(key, json) unless pending.read[key] == json }
        pending.read.each_key { |key| session.delete(key) unless now.key?(key) }
        session.ttl = options[:expire_after] if options[:expire_after]
      rescue Exception # rubocop:disable Lint/RescueException -- abort on anything, then re-raise
        release(req.env)
        raise
      end
      begin
        session.commit
      rescue Destroyed, StaleToken, NotFound => e
        # Planned outcomes (a logout meanwhile, a lease that ran out): nothing was written.
        log(req, e)
        return false
      ensure
        req.delete_header(ENV_KEY) # the commit ended the session, even when it raised
      end
      sid
    end

    def delete_session(req, sid, options)
      pending = req.get_header(ENV_KEY)
      if pending && pending.public_id == public_id(sid)
        # Until the session has ended it stays in env: #release aborts it if this raises.
        begin
          pending.session.destroy
          pending.session.commit
        rescue Destroyed, StaleToken, NotFound => e
          # Planned outcomes (destroyed meanwhile, e.g. a second logout; a lease that ran
          # out): the session is gone or not ours to destroy.
          log(req, e)
          release(req.env)
        ensure
          req.delete_header(ENV_KEY) if pending.session.closed?
        end
      else
        release(req.env)
        begin
          store.destroy(self.class.storage_id(public_id(sid)))
        rescue Destroyed, NotFound => e
          log(req, e)
        end
      end
      options[:drop] ? nil : generate_sid
    end

    def log(req, error)
      req.get_header(Rack::RACK_ERRORS)&.puts("sessync: #{error.class}: #{error.message}")
    end

    # Aborts the pending session, if any; an error of the abort is dropped with a warning
    # (this runs in ensure and rescue clauses: it must not hide the exception at hand).
    def release(env)
      pending = env.delete(ENV_KEY)
      pending&.session&.abort_quietly
    end
  end
end
