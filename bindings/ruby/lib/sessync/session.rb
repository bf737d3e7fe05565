# frozen_string_literal: true

module Sessync
  # One request's view of a session (Store#begin, Store#begin_id): a Hash-like map of
  # JSON values whose changes the engine records per key and writes at #commit as one
  # atomic patch, increments as increments. Used by one thread at a time (a Mutex makes
  # sure of it); after #commit or #abort every call raises SessionClosed.
  class Session
    F = FFI
    U = Util
    include Enumerable

    # The Set-Cookie header value the commit returned (nil before it, or when none).
    attr_reader :set_cookie

    def self.wrap(ptr, &block)
      session = new(ptr)
      block ? run(session, &block) : session
    end

    # Yields the session, commits it when the block returns (unless it was ended in the
    # block), aborts it when the block raises (an error of the abort does not hide the
    # block's exception); the block's value.
    def self.run(session)
      begin
        result = yield session
      rescue Exception # rubocop:disable Lint/RescueException -- abort on anything, then re-raise
        session.abort_quietly
        raise
      end
      session.commit unless session.closed?
      result
    end

    # Frees (aborts: the lock is released) a session that was never ended, in the process
    # that began it only.
    def self.finalizer(handle, pid = Process.pid)
      proc do
        ptr = handle[0]
        handle[0] = 0
        FFI.sessync_session_free(ptr) if ptr && ptr != 0 && Process.pid == pid
      end
    end

    private_class_method :new

    def initialize(ptr)
      @handle = [ptr]
      @mutex = Mutex.new
      @ended = nil
      ObjectSpace.define_finalizer(self, self.class.finalizer(@handle))
    end

    def closed?
      !@ended.nil?
    end

    def inspect
      return "#<Sessync::Session (#{@ended})>" if closed?

      "#<Sessync::Session #{begin
        id
      rescue InternalError
        "(poisoned)"
      end}>"
    end

    # The session's id (changes with #rotate; after the end, the id it ended with).
    def id
      @mutex.synchronize do
        return @id if @ended

        read_id(@handle[0])
      end
    end

    # Whether begin found no stored session.
    def new?
      use { |h| F.truthy(F.sessync_session_is_new(h)) }
    end

    # Whether the request changed something commit would write.
    def changed?
      use { |h| F.truthy(F.sessync_session_changed(h)) }
    end

    def version
      use { |h| F.sessync_session_version(h) }
    end

    # The fencing token of the lock held (0 without one).
    def token
      use { |h| F.sessync_session_token(h) }
    end

    # When the session expires unless touched (a Time), or nil for a new one.
    def expires_at
      ms = use { |h| F.sessync_session_expires_at(h) }
      ms.zero? ? nil : Time.at(ms / 1000, ms % 1000, :millisecond)
    end

    # The value at +key+ (this request's changes applied), or nil when absent.
    def [](key)
      key_c = U.cstr(key, "key")
      use { |h| read_json(h, key_c) }
    end

    # Hash#fetch: a default or the block for an absent key, else KeyError.
    def fetch(key, *default)
      key_c = U.cstr(key, "key")
      found = true
      value = use do |h|
        read_json(h, key_c, raise_absent: true)
      rescue NotFound
        found = false
      end
      return value if found
      return yield(key) if block_given?
      return default.first unless default.empty?

      raise KeyError.new("key not found: #{key.inspect}", receiver: self, key: key)
    end

    def key?(key)
      key_c = U.cstr(key, "key")
      use do |h|
        read_json(h, key_c, raise_absent: true)
        true
      rescue NotFound
        false
      end
    end
    alias include? key?
    alias has_key? key?

    # Sets +key+ to a JSON value (nil is JSON null: #delete removes a key).
    def []=(key, value)
      key_c = U.cstr(key, "key")
      json = U.dump(value)
      use { |h| F.check(:sessync_session_set, h, key_c, json, json.bytesize) }
    end

    # Sets +key+ to JSON text as it is (the engine checks it: InvalidJson).
    def set_json(key, json)
      key_c = U.cstr(key, "key")
      raise TypeError, "json must be a String, not #{json.class}" unless json.is_a?(String)

      use { |h| F.check(:sessync_session_set, h, key_c, json, json.bytesize) }
    end

    def set(key, value)
      self[key] = value
      self
    end

    # Removes +key+; the value it had (nil when absent).
    def delete(key)
      key_c = U.cstr(key, "key")
      use do |h|
        old = read_json(h, key_c)
        F.check(:sessync_session_remove, h, key_c)
        old
      end
    end

    # Adds +by+ to the integer at +key+ (absent counts as 0): an atomic increment at commit,
    # so concurrent requests' increments all count. The value as this request sees it.
    def incr(key, by = 1)
      key_c = U.cstr(key, "key")
      U.integer(by, "by")
      out = F.u64_out
      use { |h| F.check(:sessync_session_incr, h, key_c, by, out) }
      F.read_i64(out)
    end

    # All of the data as a Hash (this request's changes applied).
    def to_h
      buf = F.new_buf
      use { |h| F.check(:sessync_session_data, h, buf) }
      U.load(F.take_buf(buf))
    end
    alias to_hash to_h

    def each(&block)
      return enum_for(:each) unless block

      to_h.each(&block)
      self
    end

    def keys
      to_h.keys
    end

    # Opaque bytes (a binary String) at +key+; nil when absent.
    def get_bytes(key)
      key_c = U.cstr(key, "key")
      buf = F.new_buf
      use { |h| F.check(:sessync_session_get_bytes, h, key_c, buf) }
      (F.take_buf(buf) || +"").b
    rescue NotFound
      nil
    end

    def set_bytes(key, bytes)
      key_c = U.cstr(key, "key")
      b = U.bytes(bytes, "bytes")
      use { |h| F.check(:sessync_session_set_bytes, h, key_c, b, b.bytesize) }
    end

    # Gives the session its own idle TTL (seconds), applied at commit.
    def ttl=(seconds)
      ms = U.ms(seconds, "ttl", 0)
      use { |h| F.check(:sessync_session_set_ttl, h, ms) }
    end

    # Sets (a String) or clears (nil) the session's owner, e.g. the user id at login.
    def owner=(owner)
      owner_c = owner.nil? ? 0 : U.cstr(owner, "owner")
      use { |h| F.check(:sessync_session_set_owner, h, owner_c) }
    end

    # A fresh id now (at login, against session fixation); data and lock move with it.
    def rotate
      use do |h|
        F.check(:sessync_session_rotate, h)
        read_id(h)
      end
    end

    # Marks the session for destruction at commit (logout).
    def destroy
      use { |h| F.check(:sessync_session_destroy, h) }
      nil
    end

    # Ends the request: writes what changed as one atomic patch (or destroys), releases
    # the lock, and returns the Set-Cookie header value (nil when none is needed). The
    # session is ended even when this raises.
    def commit
      buf = F.new_buf
      finish("committed") { |h| F.check(:sessync_session_commit, h, buf) }
      @set_cookie = F.take_buf(buf)
    end

    # Ends the request without writing and releases the lock.
    def abort
      finish("aborted") { |h| F.check(:sessync_session_abort, h) }
      nil
    end

    # #abort for cleanup code (ensure, rescue): an error of the abort is dropped with a
    # warning, so that it does not hide the exception being handled; a session already
    # ended is left alone. Whether it aborted without an error.
    def abort_quietly
      return false if closed?

      abort
      true
    rescue StandardError => e
      warn "sessync: aborting the session failed: #{e.class}: #{e.message}"
      false
    end

    private

    # The id of a live handle; NULL means the handle is poisoned (InternalError).
    def read_id(h)
      p = F.sessync_session_id(h)
      raise InternalError, "the session handle is unusable (poisoned by an internal error)" if p.null?

      p.to_s
    end

    def read_json(h, key_c, raise_absent: false)
      buf = F.new_buf
      F.check(:sessync_session_get, h, key_c, buf)
      U.load(F.take_buf(buf))
    rescue NotFound
      raise if raise_absent

      nil
    end

    def use
      @mutex.synchronize do
        raise SessionClosed, "the session was already #{@ended}" if @ended

        yield @handle[0]
      end
    end

    def finish(how)
      @mutex.synchronize do
        raise SessionClosed, "the session was already #{@ended}" if @ended

        ptr = @handle[0]
        @handle[0] = 0
        @ended = how
        # A poisoned handle has no id (NULL): the session is still ended below.
        idp = F.sessync_session_id(ptr)
        @id = idp.null? ? nil : idp.to_s
        yield ptr
      end
    end
  end
end
