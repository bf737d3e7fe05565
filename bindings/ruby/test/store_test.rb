# frozen_string_literal: true

require_relative "test_helper"
require "minitest/mock"

class StoreTest < Minitest::Test
  def setup
    @store = Sessync::Store.new("mem://", cookie_name: "sid")
  end

  def teardown
    @store.close
  end

  def cookie_of(set_cookie)
    "sid=#{set_cookie[/\Asid=([^;]+)/, 1]}"
  end

  def test_library_matches_header
    assert_equal Sessync::FFI.header_version, Sessync::FFI.sessync_version_number
    assert_equal "0.2.0", Sessync.library_version
  end

  def test_begin_set_incr_commit_and_resume_with_the_cookie
    s = @store.begin(nil)
    assert s.new?
    s["cart"] = ["pear", { "qty" => 2 }]
    s[:name] = "ada"
    assert_equal 1, s.incr("visits")
    assert_equal 5, s.incr("visits", 4)
    assert s.changed?
    set_cookie = s.commit
    assert_match(/\Asid=[A-Za-z0-9_-]{32}; Path=\/; HttpOnly; SameSite=Lax\z/, set_cookie)
    assert_equal set_cookie, s.set_cookie

    r = @store.begin(cookie_of(set_cookie))
    refute r.new?
    assert_operator r.token, :>, 0
    assert_equal({ "cart" => ["pear", { "qty" => 2 }], "name" => "ada", "visits" => 5 }, r.to_h)
    assert_equal "ada", r.delete("name")
    assert_nil r["name"]
    refute r.key?("name")
    assert_equal 7, r.fetch("absent", 7)
    assert_raises(KeyError) { r.fetch("absent") }
    assert_nil r.commit # same id: no cookie to send
    assert_equal({ "cart" => ["pear", { "qty" => 2 }], "visits" => 5 }, @store.fetch(r.id))
  end

  def test_block_commits_and_aborts_on_exception
    id = Sessync.generate_id
    value = @store.begin_id(id) do |s|
      s["a"] = 1
      :done
    end
    assert_equal :done, value
    assert_equal({ "a" => 1 }, @store.fetch(id))
    assert_raises(RuntimeError) do
      @store.begin_id(id) do |s|
        s["a"] = 2
        raise "boom"
      end
    end
    assert_equal({ "a" => 1 }, @store.fetch(id))
    # The lock was released: a zero wait gets it at once.
    @store.begin_id(id, wait: 0, &:abort)
  end

  def test_store_level_calls
    id = Sessync.generate_id
    assert_nil @store.fetch(id)
    v1 = @store.write(id, { "a" => 1 })
    assert_operator @store.patch(id, { "b" => [1], "a" => nil }), :>, v1
    assert_equal 3, @store.incr(id, "n", 3)
    assert_equal({ "b" => [1], "n" => 3 }, @store.fetch(id))
    assert_equal id, @store.fetch_record(id)["id"]
    assert @store.touch(id, ttl: 60)
    assert_equal 60_000, @store.fetch_record(id)["ttl"]
    assert_includes @store.each_id.to_a, id
    assert_operator @store.stats[:sessions], :>=, 1
    assert @store.destroy(id)
    refute @store.destroy(id)
    assert_nil @store.fetch(id)
    @store.write(Sessync.generate_id, {})
    assert_equal 1, @store.clear
  end

  def test_ttl_rotate_owner_bytes_destroy
    s = @store.begin(nil)
    s["x"] = 1
    s.ttl = 120
    s.owner = "user-1"
    s.set_bytes("blob", "\xff\x00\x01".b)
    old = s.id
    new_id = s.rotate
    refute_equal old, new_id
    s.commit
    assert_equal 120_000, @store.fetch_record(new_id)["ttl"]
    assert_equal [new_id], @store.sessions_of("user-1")
    r = @store.begin_id(new_id)
    assert_equal "\xff\x00\x01".b, r.get_bytes("blob")
    assert_nil r.get_bytes("absent")
    r.destroy
    assert_nil r.commit # begin_id: the framework owns the cookie
    assert_nil @store.fetch(new_id)
  end

  def test_ids
    id = Sessync.generate_id
    assert_match(/\A[A-Za-z0-9_-]{32}\z/, id)
    assert Sessync.valid_id?(id)
    refute Sessync.valid_id?("short")
    refute Sessync.valid_id?(nil)
    assert_equal id, Sessync.check_id(id)
    e = assert_raises(Sessync::InvalidArgument) { Sessync.check_id("bad id with spaces!") }
    assert_match(/invalid argument/, e.message)
  end

  # A thread waiting for a session's lock inside a call into the library does not hold
  # up the process's other Ruby threads (Fiddle releases the GVL during calls).
  def test_lock_wait_does_not_block_other_threads
    id = Sessync.generate_id
    @store.write(id, { "n" => 0 })
    holder = @store.begin_id(id)
    waiter = Thread.new { @store.begin_id(id, wait: 10) { |s| s.incr("n") } }
    ticks = 0
    t0 = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    ticks += 1 while Process.clock_gettime(Process::CLOCK_MONOTONIC) - t0 < 0.3
    assert waiter.alive?, "the waiter should still wait for the lock"
    assert_operator ticks, :>, 1000
    holder.incr("n")
    holder.commit
    assert_equal 2, waiter.value
    assert_equal({ "n" => 2 }, @store.fetch(id))
  end

  # Threads of one process, one visitor, each incrementing one key under the lock with a
  # read-modify-write: nothing lost. (The session exists first: begin_id on an id naming
  # no live session begins a new session, which has no lock to take.)
  def test_threads_lose_nothing
    id = Sessync.generate_id
    @store.write(id, {})
    threads = Array.new(16) do
      Thread.new do
        10.times do
          @store.begin_id(id) { |s| s["n"] = (s["n"] || 0) + 1 }
        end
      end
    end
    threads.each(&:join)
    assert_equal 160, @store.fetch(id)["n"]
  end

  def test_close_waits_and_refuses
    @store.close
    assert @store.closed?
    @store.close # idempotent
    e = assert_raises(Sessync::StoreClosed) { @store.begin(nil) }
    assert_equal "the store is closed", e.message
    assert_kind_of Sessync::Error, e
    assert_raises(Sessync::StoreClosed) { @store.fetch(Sessync.generate_id) }
  end

  # An exception raised into a thread (Thread#raise, Rack::Timeout) while its begin waits
  # for the lock arrives when the C call returns: the session it began must not leak with
  # the lock held.
  def test_interrupt_while_begin_waits_releases_the_lock
    id = Sessync.generate_id
    @store.write(id, { "a" => 1 })
    holder = @store.begin_id(id)
    waiter = Thread.new do
      Thread.current.report_on_exception = false
      @store.begin_id(id, wait: 10)
    end
    wait_until_waiting(waiter)
    waiter.raise(RuntimeError, "timeout")
    holder.abort
    e = assert_raises(RuntimeError) { waiter.value }
    assert_equal "timeout", e.message
    third = @store.begin_id(id, wait: 0.5)
    third.abort
  end

  def wait_until_waiting(thread)
    SessyncTestHelper.wait_until("the thread to wait") { thread.status == "sleep" || thread.stop? }
    sleep 0.1
  end

  # With a poisoned handle sessync_session_id returns NULL: the session still ends.
  def test_finish_with_a_null_id_still_ends_the_session
    id = Sessync.generate_id
    @store.write(id, { "a" => 1 })
    s = @store.begin_id(id)
    Sessync::FFI.stub(:sessync_session_id, Fiddle::Pointer.new(0)) do
      assert_raises(Sessync::InternalError) { s.id }
      s.abort
    end
    assert s.closed?
    @store.begin_id(id, wait: 0, &:abort) # the lock was released
  end

  def test_abort_failing_in_a_block_does_not_hide_the_blocks_exception
    id = Sessync.generate_id
    real_abort = Sessync::Session.instance_method(:abort)
    leaked = nil
    e = assert_raises(RuntimeError) do
      @store.begin_id(id) do |s|
        leaked = s
        s.define_singleton_method(:abort) { raise Sessync::BackendError, "down" }
        raise "boom"
      end
    end
    assert_equal "boom", e.message
  ensure
    real_abort.bind(leaked).call if leaked && !leaked.closed?
  end

  # A store never crosses fork(): the child gets StoreClosed, and the parent's store
  # still works after the child has exited (the child freed nothing).
  def test_store_used_after_fork_raises_store_closed
    id = Sessync.generate_id
    @store.write(id, { "a" => 1 })
    rd, wr = IO.pipe
    pid = fork do
      rd.close
      begin
        @store.fetch(id)
        wr.write("no error")
      rescue Sessync::StoreClosed => e
        wr.write("StoreClosed: #{e.message}")
      rescue Exception => e # rubocop:disable Lint/RescueException
        wr.write("#{e.class}: #{e.message}")
      end
      @store.close
      wr.close
      GC.start
      exit!(0)
    end
    wr.close
    Process.waitpid(pid)
    msg = rd.read
    rd.close
    assert_match(/\AStoreClosed: .*after fork/, msg)
    assert_equal({ "a" => 1 }, @store.fetch(id))
  end
end
