# frozen_string_literal: true

require_relative "test_helper"

# Bad input gives Ruby's ordinary errors (TypeError, ArgumentError, KeyError) or a
# Sessync::Error carrying the engine's status and message; never a crash.
class ErrorsTest < Minitest::Test
  def setup
    @store = Sessync::Store.new("mem://")
    @s = @store.begin(nil)
  end

  def teardown
    @s.abort unless @s.closed?
    @store.close
  end

  def test_engine_errors_carry_status_and_message
    e = assert_raises(Sessync::InvalidArgument) { @store.begin_id("short") }
    assert_equal Sessync::FFI.statuses["INVALID_ARGUMENT"], e.status
    assert_equal "INVALID_ARGUMENT", e.status_name
    assert_equal "invalid argument: session id must be 16 to 48 characters, got 5", e.message

    @s["name"] = "ada"
    e = assert_raises(Sessync::NotANumber) { @s.incr("name") }
    assert_equal 15, e.status
    assert_equal 'not a number: key "name" does not hold an integer', e.message

    e = assert_raises(Sessync::InvalidJson) { @s.set_json("k", "{nope") }
    assert_equal 13, e.status
    assert_match(/\Ainvalid JSON: /, e.message)

    e = assert_raises(Sessync::InvalidArgument) { Sessync::Store.new("bogus://") }
    assert_match(/store URL scheme "bogus" is not supported/, e.message)
    e = assert_raises(Sessync::InvalidArgument) { Sessync::Store.new("mem://", no_such_option: 1) }
    assert_match(/no_such_option/, e.message)
    e = assert_raises(Sessync::InvalidArgument) { @s.ttl = 0 }
    assert_match(/ttl/i, e.message)
  end

  def test_every_status_has_a_class
    Sessync::FFI.statuses.each do |name, number|
      next if number.zero?

      assert Sessync::ERROR_CLASSES.key?(name), "no class for #{name}"
    end
  end

  def test_lock_timeout
    id = Sessync.generate_id
    @store.write(id, {})
    holder = @store.begin_id(id)
    e = assert_raises(Sessync::LockTimeout) { @store.begin_id(id, wait: 0.05) }
    assert_equal 3, e.status
    assert_equal "timed out waiting for the session lock", e.message
    holder.abort
  end

  def test_wrong_ruby_types
    assert_raises(TypeError) { @s[Object.new] = 1 }
    assert_raises(TypeError) { @s[nil] }
    e = assert_raises(TypeError) { @s["t"] = Object.new }
    assert_equal "Object is not JSON serializable", e.message
    assert_raises(TypeError) { @s["t"] = { 1 => 2 } }
    assert_raises(TypeError) { @s["t"] = Float::NAN }
    assert_raises(TypeError) { @s.incr("n", "1") }
    assert_raises(RangeError) { @s.incr("n", 2**64) }
    assert_raises(ArgumentError) { @s["a\0b"] = 1 }
    assert_raises(TypeError) { @store.begin(42) }
    assert_raises(TypeError) { @store.begin_id(nil) }
    assert_raises(TypeError) { @store.begin_id(Sessync.generate_id, wait: "1s") }
    assert_raises(TypeError) { @store.write(Sessync.generate_id, [1]) }
    assert_raises(TypeError) { Sessync::Store.new(nil) }
    # Nothing above changed the session.
    refute @s.changed?
  end

  def test_use_after_commit_and_abort
    @s["a"] = 1
    @s.commit
    e = assert_raises(Sessync::SessionClosed) { @s["a"] }
    assert_equal "the session was already committed", e.message
    assert_raises(Sessync::SessionClosed) { @s["a"] = 2 }
    assert_raises(Sessync::SessionClosed) { @s.commit }
    assert_raises(Sessync::SessionClosed) { @s.abort }
    t = @store.begin(nil)
    t.abort
    e = assert_raises(Sessync::SessionClosed) { t.incr("n") }
    assert_equal "the session was already aborted", e.message
  end

  def test_garbage_collected_session_releases_its_lock
    id = Sessync.generate_id
    @store.write(id, {})
    Thread.new { @store.begin_id(id) && nil }.join # dropped without commit
    Sessync::Session.new(0) rescue nil
    4.times { GC.start }
    @store.begin_id(id, wait: 5, &:abort)
  end
end
