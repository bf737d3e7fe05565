# frozen_string_literal: true

require_relative "test_helper"
require "rack/test"
require "rack/lint"
require "sessync/rack"

# Sessync::RackSession with Rack::Test, on an in-process store.
class RackSessionTest < Minitest::Test
  include Rack::Test::Methods

  def setup
    @store = Sessync::Store.new("mem://")
    @options = {}
  end

  def teardown
    @store.close
  end

  def app
    store = @store
    options = @options
    Rack::Builder.new do
      use Rack::Lint
      use Sessync::RackSession, store: store, key: "rack.session", **options
      run lambda { |env|
        req = Rack::Request.new(env)
        session = env["rack.session"]
        case req.path_info
        when "/incr"
          session["count"] = (session["count"] || 0) + 1
          session[:sym] = "v"
          [200, { "content-type" => "text/plain" }, [session["count"].to_s]]
        when "/show"
          [200, { "content-type" => "text/plain" }, [session.to_hash.to_a.sort.inspect]]
        when "/cart"
          (session["cart"] ||= []) << req.params["sku"]
          [200, { "content-type" => "text/plain" }, [session["cart"].join(",")]]
        when "/remove"
          session.delete("count")
          [200, { "content-type" => "text/plain" }, ["ok"]]
        when "/bad"
          session["obj"] = Object.new
          [200, { "content-type" => "text/plain" }, ["?"]]
        when "/raise"
          session["count"] = 1000
          raise "boom"
        when "/logout"
          env["rack.session.options"][:drop] = true
          [200, { "content-type" => "text/plain" }, ["bye"]]
        when "/renew"
          env["rack.session.options"][:renew] = true
          [200, { "content-type" => "text/plain" }, [session["count"].to_s]]
        when "/lazy"
          # The session is first touched while the server iterates the body, after the
          # middleware returned.
          body = Object.new
          body.define_singleton_method(:each) { |&blk| blk.call(session["count"].to_s) }
          [200, { "content-type" => "text/plain" }, body]
        when "/logout-loaded"
          session["count"]
          env["rack.session.options"][:drop] = true
          [200, { "content-type" => "text/plain" }, ["bye"]]
        when "/id"
          [200, { "content-type" => "text/plain" }, [session.id.public_id]]
        else
          [200, { "content-type" => "text/plain" }, ["untouched"]]
        end
      }
    end
  end

  def cookie
    rack_mock_session.cookie_jar["rack.session"]
  end

  def test_session_persists_across_requests
    get "/incr"
    assert_equal "1", last_response.body
    sid = cookie
    assert_match(/\A[A-Za-z0-9_-]{32}\z/, sid)
    get "/incr"
    get "/incr"
    assert_equal "3", last_response.body
    assert_equal sid, cookie
    get "/show"
    assert_equal [["count", 3], ["sym", "v"]].inspect, last_response.body
  end

  def test_store_keeps_a_private_id
    get "/incr"
    sid = cookie
    assert_nil @store.fetch(sid), "the store must not be keyed by the cookie's value"
    private_id = Sessync::RackSession.storage_id(sid)
    assert_equal 43, private_id.size
    assert_equal({ "count" => 1, "sym" => "v" }, @store.fetch(private_id))
  end

  def test_in_place_changes_and_removal_are_written
    get "/cart", sku: "pear"
    get "/cart", sku: "fig"
    assert_equal "pear,fig", last_response.body
    get "/remove"
    get "/show"
    assert_equal [["cart", %w[pear fig]]].inspect, last_response.body
  end

  def test_only_changed_keys_are_written
    get "/incr"
    private_id = Sessync::RackSession.storage_id(cookie)
    # Another writer changes a key this request does not touch: the request's commit
    # must not put back the value it read.
    @store.patch(private_id, { "other" => "theirs" })
    get "/incr"
    assert_equal({ "count" => 2, "sym" => "v", "other" => "theirs" }, @store.fetch(private_id))
  end

  def test_unknown_client_id_is_never_adopted
    set_cookie "rack.session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    get "/incr"
    refute_equal "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", cookie
    assert_nil @store.fetch(Sessync::RackSession.storage_id("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"))
    set_cookie "rack.session=not a valid id at all!"
    get "/incr"
    assert_equal "1", last_response.body
  end

  def test_untouched_session_is_not_loaded_and_takes_no_lock
    get "/incr"
    private_id = Sessync::RackSession.storage_id(cookie)
    holder = @store.begin_id(private_id)
    get "/" # never reads the session: no wait
    assert_equal "untouched", last_response.body
    holder.abort
  end

  def test_exception_aborts_and_releases_the_lock
    get "/incr"
    assert_raises(RuntimeError) { get "/raise" }
    private_id = Sessync::RackSession.storage_id(cookie)
    assert_equal 1, @store.fetch(private_id)["count"]
    @store.begin_id(private_id, wait: 0, &:abort) # not locked
  end

  def test_non_json_value_is_a_type_error_and_writes_nothing
    get "/incr"
    e = assert_raises(TypeError) { get "/bad" }
    assert_equal "Object is not JSON serializable", e.message
    private_id = Sessync::RackSession.storage_id(cookie)
    assert_equal({ "count" => 1, "sym" => "v" }, @store.fetch(private_id))
    @store.begin_id(private_id, wait: 0, &:abort)
  end

  def test_drop_destroys_and_renew_moves_the_data
    get "/incr"
    first = cookie
    get "/renew"
    second = cookie
    refute_equal first, second
    assert_nil @store.fetch(Sessync::RackSession.storage_id(first))
    assert_equal 1, @store.fetch(Sessync::RackSession.storage_id(second))["count"]
    get "/logout"
    assert_nil @store.fetch(Sessync::RackSession.storage_id(second))
    get "/incr"
    assert_equal "1", last_response.body
  end

  def test_expire_after_is_the_sessions_ttl
    @options = { expire_after: 600 }
    get "/incr"
    record = @store.fetch_record(Sessync::RackSession.storage_id(cookie))
    assert_equal 600_000, record["ttl"]
    assert_match(/expires=/i, last_response.headers["set-cookie"] || last_response.headers["Set-Cookie"])
  end

  def test_session_id_is_the_public_id
    get "/incr"
    get "/id"
    assert_equal cookie, last_response.body
  end

  def test_lock_timeout_is_a_503_with_retry_after
    @options = { lock_wait: 0.05 }
    get "/incr"
    holder = @store.begin_id(Sessync::RackSession.storage_id(cookie))
    get "/incr"
    assert_equal 503, last_response.status
    assert_equal "1", last_response.headers["retry-after"]
    holder.abort
    get "/incr"
    assert_equal "2", last_response.body
  end

  def test_session_first_touched_after_the_response_takes_no_lock
    get "/incr"
    private_id = Sessync::RackSession.storage_id(cookie)
    get "/lazy"
    assert_equal "1", last_response.body
    @store.begin_id(private_id, wait: 0, &:abort) # not locked
  end

  # Replaces Session#name for the block (the original is given to +body+).
  def with_session_method(name, body)
    original = Sessync::Session.instance_method(name)
    Sessync::Session.send(:define_method, name) { |*args| instance_exec(original, *args, &body) }
    yield
  ensure
    Sessync::Session.send(:define_method, name, original)
  end

  # The logout's commit meets a planned outcome (StaleToken: the lease ran out; Destroyed):
  # not a 500.
  def test_logout_meeting_a_planned_error_is_not_an_error
    get "/incr"
    private_id = Sessync::RackSession.storage_id(cookie)
    with_session_method(:commit, lambda { |orig|
      orig.bind(self).call
      raise Sessync::StaleToken, "the lock was taken over"
    }) do
      get "/logout-loaded" # loads: the logout commits the session it holds
    end
    assert_equal 200, last_response.status
    get "/logout" # a second logout
    assert_equal 200, last_response.status
    @store.begin_id(private_id, wait: 0, &:abort) # not locked
  end

  # Session#destroy failing in a logout: the session's lock is still released.
  def test_logout_whose_destroy_raises_releases_the_lock
    get "/incr"
    private_id = Sessync::RackSession.storage_id(cookie)
    with_session_method(:destroy, ->(_orig) { raise Sessync::BackendError, "down" }) do
      assert_raises(Sessync::BackendError) { get "/logout-loaded" }
    end
    @store.begin_id(private_id, wait: 0, &:abort) # not locked
  end

  # Not a StandardError (an interrupt, a timeout) while the session is read: the lock is
  # still released.
  def test_exception_while_loading_releases_the_lock
    get "/incr"
    private_id = Sessync::RackSession.storage_id(cookie)
    stop = Class.new(Exception) # rubocop:disable Lint/InheritException
    original = Sessync::Session.instance_method(:to_h)
    Sessync::Session.send(:define_method, :to_h) { raise stop, "stop" }
    begin
      assert_raises(stop) { get "/incr" }
    ensure
      Sessync::Session.send(:define_method, :to_h, original)
    end
    @store.begin_id(private_id, wait: 0, &:abort) # not locked
  end

  def test_abort_failing_does_not_hide_the_apps_exception
    get "/incr"
    original = Sessync::Session.instance_method(:abort)
    Sessync::Session.send(:define_method, :abort) do
      original.bind(self).call
      raise Sessync::BackendError, "down"
    end
    begin
      e = assert_raises(RuntimeError) { get "/raise" }
      assert_equal "boom", e.message
    ensure
      Sessync::Session.send(:define_method, :abort, original)
    end
  end

  def test_forked_child_opens_its_own_store
    mw = Sessync::RackSession.new(->(_) { [200, {}, []] }, url: "mem://")
    parent = mw.store
    rd, wr = IO.pipe
    pid = fork do
      rd.close
      child = mw.store
      wr.write(child.equal?(parent) ? "same" : "own:#{child.fetch(Sessync.generate_id).inspect}")
      wr.close
      exit!(0)
    end
    wr.close
    Process.waitpid(pid)
    assert_equal "own:nil", rd.read
    rd.close
    parent.close
  end

  def test_store_option_type_is_checked
    assert_raises(TypeError) { Sessync::RackSession.new(->(_) {}, store: "mem://") }
  end
end
