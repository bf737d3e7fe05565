# frozen_string_literal: true

module Sessync
  # A session store: +mem://+ (in this process), +unix://+ / +tcp://+ / +tls://+ (sessyncd)
  # or +redis://+. Thread-safe: open one per process (after forking: a prefork server
  # such as Puma in cluster mode opens one in each worker) and share it.
  #
  #   store = Sessync::Store.new("unix:///run/sessync.sock", cookie_name: "sid", ttl: 1800)
  #   s = store.begin(env["HTTP_COOKIE"])       # takes the session's lock
  #   s.incr("visits")
  #   set_cookie = s.commit                      # one atomic patch; nil when no cookie to send
  class Store
    F = FFI
    U = Util

    # +options+ are sessync_options_set keys (cookie_name:, cookie_secure:, lock_wait:,
    # ttl: seconds or "30m", ...), plus signing_keys: [String] and cookie_format: "express".
    def initialize(url = "mem://", **options)
      url_c = U.cstr(url, "url")
      opts = nil
      unless options.empty?
        out = F.u64_out
        F.check(:sessync_options_new, out)
        opts = F.read_ptr(out)
      end
      begin
        options.each do |key, value|
          case key.to_sym
          when :signing_keys
            Array(value).each do |k|
              b = U.bytes(k, "a signing key")
              F.check(:sessync_options_add_signing_key, opts, b, b.bytesize)
            end
          else
            F.check(:sessync_options_set, opts, U.cstr(key.to_s, "option name"),
                    U.cstr(U.option_text(key, value), "option #{key}"))
          end
        end
        out = F.u64_out
        F.check(:sessync_store_open, url_c, opts || 0, out)
      ensure
        F.sessync_options_free(opts) if opts
      end
      @url = url
      @handle = [F.read_ptr(out)]
      @pid = Process.pid
      @users = 0
      @mutex = Mutex.new
      ObjectSpace.define_finalizer(self, self.class.finalizer(@handle))
    end

    # Opens a store, yields it, and closes it.
    def self.open(url = "mem://", **options)
      store = new(url, **options)
      return store unless block_given?

      begin
        yield store
      ensure
        store.close
      end
    end

    # Frees a store that was never closed, in the process that opened it only: a store
    # never crosses fork(), and a forked child must not free its parent's.
    def self.finalizer(handle, pid = Process.pid)
      proc do
        ptr = handle[0]
        handle[0] = 0
        FFI.sessync_store_free(ptr) if ptr && ptr != 0 && Process.pid == pid
      end
    end

    attr_reader :url

    def inspect
      "#<Sessync::Store #{@url}#{closed? ? " (closed)" : ""}>"
    end

    # Releases the store. Calls running on other threads finish first; later calls raise
    # StoreClosed. Sessions already begun keep working until they end. Idempotent.
    def close
      @mutex.synchronize do
        return if @closed

        @closed = true
        release_locked if @users.zero?
      end
      nil
    end

    def closed?
      @closed ? true : false
    end

    # Starts a request from the raw Cookie header (nil or "" without one): a visitor
    # without a valid cookie naming a live session gets a fresh id. +lock+ takes the
    # session's lock for the request; +wait+ is the longest wait for it in seconds (nil:
    # the store's lock_wait). With a block: yields the session, commits it when the block
    # returns (unless it was ended in the block), aborts it when the block raises, and
    # returns the block's value (the Set-Cookie value is then Session#set_cookie).
    def begin(cookie = nil, lock: true, wait: nil, &block)
      cookie = "" if cookie.nil?
      raw = U.bytes(cookie, "cookie")
      lock_i = lock ? 1 : 0
      wait_i = wait_ms(wait)
      begin_session(block) { |h, out| F.check(:sessync_session_begin, h, raw, raw.bytesize, lock_i, wait_i, out) }
    end

    # Starts a request on a session whose id the caller vouches for (a framework that
    # issues its own cookies): an id naming no live session begins a new session under
    # that id (Session#new?). Commit never returns a cookie.
    def begin_id(id, lock: true, wait: nil, &block)
      id_c = U.cstr(id, "id")
      lock_i = lock ? 1 : 0
      wait_i = wait_ms(wait)
      begin_session(block) { |h, out| F.check(:sessync_session_begin_id, h, id_c, lock_i, wait_i, out) }
    end

    # The session's data as a Hash, or nil when it does not exist.
    def fetch(id)
      id_c = U.cstr(id, "id")
      buf = F.new_buf
      use { |h| F.check(:sessync_store_fetch, h, id_c, buf, 0) }
      U.load(F.take_buf(buf))
    rescue NotFound
      nil
    end

    # The whole record as a Hash ("id", "data", "version", "created", "last_access",
    # "expires_at", "owner", "ttl"), or nil when it does not exist.
    def fetch_record(id)
      id_c = U.cstr(id, "id")
      buf = F.new_buf
      use { |h| F.check(:sessync_store_fetch_record, h, id_c, buf) }
      U.load(F.take_buf(buf))
    rescue NotFound
      nil
    end

    # Replaces a session's data with +data+ (a Hash), creating it if absent; the version.
    def write(id, data)
      raise TypeError, "data must be a Hash, not #{data.class}" unless data.is_a?(Hash)

      id_c = U.cstr(id, "id")
      json = U.dump(data)
      out = F.u64_out
      use { |h| F.check(:sessync_store_write, h, id_c, json, json.bytesize, 0, 0, 0, out) }
      F.read_u64(out)
    end

    # Applies a JSON Merge Patch (a Hash: nil deletes a key) atomically; the version.
    def patch(id, patch, create: true)
      raise TypeError, "patch must be a Hash, not #{patch.class}" unless patch.is_a?(Hash)

      id_c = U.cstr(id, "id")
      json = U.dump(patch)
      out = F.u64_out
      use { |h| F.check(:sessync_store_patch, h, id_c, json, json.bytesize, 0, create ? 1 : 0, out) }
      F.read_u64(out)
    end

    # Adds +by+ to the integer at +key+ atomically (absent counts as 0); the sum.
    def incr(id, key, by = 1, create: true)
      id_c = U.cstr(id, "id")
      key_c = U.cstr(key, "key")
      U.integer(by, "by")
      out = F.u64_out
      use { |h| F.check(:sessync_store_incr, h, id_c, key_c, by, 0, create ? 1 : 0, out) }
      F.read_i64(out)
    end

    # Records an access (with +ttl+ seconds: gives the session that idle TTL). Whether it
    # wrote.
    def touch(id, ttl: nil)
      id_c = U.cstr(id, "id")
      out = F.u64_out
      if ttl.nil?
        use { |h| F.check(:sessync_store_touch, h, id_c, out) }
      else
        ttl_ms = U.ms(ttl, "ttl", 0)
        use { |h| F.check(:sessync_store_touch_ttl, h, id_c, ttl_ms, out) }
      end
      out[0, 1].unpack1("C") != 0
    end

    # Destroys a session (tombstoned: requests in flight cannot bring it back). Whether it
    # existed.
    def destroy(id)
      id_c = U.cstr(id, "id")
      out = F.u64_out
      use { |h| F.check(:sessync_store_destroy, h, id_c, out) }
      out[0, 1].unpack1("C") != 0
    end

    # Yields the id of every live session (a SCAN-like walk; Redis may repeat one). An
    # Enumerator without a block.
    def each_id(page: 100)
      return enum_for(:each_id, page: page) unless block_given?

      cursor = 0
      loop do
        buf = F.new_buf
        next_out = F.u64_out
        use { |h| F.check(:sessync_store_list, h, cursor, page, buf, next_out) }
        U.load(F.take_buf(buf)).each { |id| yield id }
        cursor = F.read_u64(next_out)
        break if cursor.zero?
      end
      nil
    end

    # Destroys every session; how many.
    def clear
      out = F.u64_out
      use { |h| F.check(:sessync_store_clear, h, out) }
      F.read_u64(out)
    end

    # The ids of an owner's sessions (Session#owner=).
    def sessions_of(owner)
      owner_c = U.cstr(owner, "owner")
      buf = F.new_buf
      use { |h| F.check(:sessync_store_sessions_of, h, owner_c, buf) }
      U.load(F.take_buf(buf))
    end

    # Destroys every session of an owner ("log out everywhere"); how many.
    def destroy_all(owner)
      owner_c = U.cstr(owner, "owner")
      out = F.u64_out
      use { |h| F.check(:sessync_store_destroy_all, h, owner_c, out) }
      F.read_u64(out)
    end

    STATS = %i[sessions tombstones aliases operations lock_waits lock_timeouts expirations evictions].freeze

    # The store's counters as a Hash.
    def stats
      size = STATS.size * 8
      out = Fiddle::Pointer.malloc(size, Fiddle::RUBY_FREE)
      out[0, size] = "\0" * size
      use { |h| F.check(:sessync_store_stats, h, out, size) }
      STATS.zip(out[0, size].unpack("Q*")).to_h
    end

    private

    def wait_ms(wait)
      U.ms(wait, "wait", -1)
    end

    # Runs the begin call (the block, given the handle and the out pointer) and wraps the
    # session it returns with interrupts deferred: an exception raised into the thread
    # (Thread#raise, Rack::Timeout) while the call waits for the lock arrives right after
    # the call, and would otherwise leave the session, and its lock, in +out+ only. It
    # arrives once the session is wrapped, and the session is then aborted. Fiddle cannot
    # be interrupted during the call anyway.
    def begin_session(block)
      session = nil
      begin
        Thread.handle_interrupt(Object => :never) do
          out = F.u64_out
          use { |h| yield h, out }
          session = Session.send(:new, F.read_ptr(out))
        end
      rescue Exception # rubocop:disable Lint/RescueException -- abort on anything, then re-raise
        Thread.handle_interrupt(Object => :never) { session&.abort_quietly }
        raise
      end
      block ? Session.run(session, &block) : session
    end

    # Runs the block with the live handle; close waits for running calls to finish.
    def use
      h = @mutex.synchronize do
        raise StoreClosed, "the store is closed" if @closed
        check_pid!

        @users += 1
        @handle[0]
      end
      begin
        yield h
      ensure
        @mutex.synchronize do
          @users -= 1
          release_locked if @closed && @users.zero?
        end
      end
    end

    # A store never crosses fork(): in a child its handle is the parent's (a mem:// store
    # would diverge, a daemon's connection would be shared).
    def check_pid!
      return if Process.pid == @pid

      raise StoreClosed, "the store was opened in process #{@pid}, before a fork: open the store " \
                         "after fork (in each worker, e.g. Puma's on_worker_boot), not before"
    end

    # Frees the handle, in the process that opened it only (a child drops it).
    def release_locked
      ptr = @handle[0]
      @handle[0] = 0
      F.sessync_store_free(ptr) if ptr && ptr != 0 && Process.pid == @pid
    end
  end
end
