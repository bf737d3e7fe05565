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
  # is written and the lock is released.
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
  # and :store (a Sessync::Store, shared as it is: the caller opens one per process) or
  # :url with :store_options (the store is then opened lazily in each process, after a
  # prefork server's fork), :lock_wait (seconds, default the store's lock_wait, 10 s).
  class RackSession < Rack::Session::Abstract::PersistedSecure
    # The request's sessync session (the lock held) between find_session and the commit.
    ENV_KEY = "sessync.session"

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

    def context(env, app = @app)
      super
    ensure
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

    def find_session(req, sid)
      release(req.env) # a reload in the same request starts over
      session = nil
      if sid && !public_id(sid).empty?
        session = begin_locked(public_id(sid))
        if session.new? # names no live session: never adopt the client's id
          session.abort
          session = nil
        end
      end
      unless session
        sid = generate_sid
        session = begin_locked(sid.public_id)
      end
      begin
        data = session.to_h
      rescue StandardError
        session.abort
        raise
      end
      read = data.transform_values { |v| Util.dump(v) }
      req.set_header(ENV_KEY, Pending.new(session, sid.public_id, read))
      [sid, data]
    end

    def write_session(req, sid, data, options)
      pending = req.get_header(ENV_KEY)
      req.delete_header(ENV_KEY)
      if pending.nil? || pending.public_id != public_id(sid)
        pending&.session&.abort
        # A renewed id (or a write without a load): a new session under that id.
        pending = Pending.new(begin_locked(public_id(sid)), public_id(sid), {})
      end
      session = pending.session
      begin
        now = {}
        data.each { |key, value| now[key.to_s] = Util.dump(value) }
        now.each { |key, json| session.set_json(key, json) unless pending.read[key] == json }
        pending.read.each_key { |key| session.delete(key) unless now.key?(key) }
        session.ttl = options[:expire_after] if options[:expire_after]
      rescue Exception # rubocop:disable Lint/RescueException -- abort on anything, then re-raise
        session.abort
        raise
      end
      begin
        session.commit
      rescue Destroyed, StaleToken, NotFound => e
        # Planned outcomes (a logout meanwhile, a lease that ran out): nothing was written.
        req.get_header(Rack::RACK_ERRORS)&.puts("sessync: #{e.class}: #{e.message}")
        return false
      end
      sid
    end

    def delete_session(req, sid, options)
      pending = req.get_header(ENV_KEY)
      req.delete_header(ENV_KEY)
      if pending && pending.public_id == public_id(sid)
        pending.session.destroy
        pending.session.commit
      else
        pending&.session&.abort
        store.destroy(self.class.storage_id(public_id(sid)))
      end
      options[:drop] ? nil : generate_sid
    end

    def release(env)
      pending = env.delete(ENV_KEY)
      pending.session.abort if pending && !pending.session.closed?
    end
  end
end
