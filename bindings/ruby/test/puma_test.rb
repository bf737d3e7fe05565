# frozen_string_literal: true

require_relative "test_helper"
require "net/http"

# The example (examples/config.ru) under Puma with 4 worker processes on one sessyncd:
# one visitor's 32 concurrent requests, each incrementing one key, lose nothing.
class PumaTest < Minitest::Test
  include SessyncTestHelper

  EXAMPLES = File.expand_path("../examples", __dir__)

  def puma
    ENV["PUMA"] || "puma"
  end

  def get(port, cookie = nil)
    Net::HTTP.start("127.0.0.1", port, open_timeout: 5, read_timeout: 60) do |http|
      req = Net::HTTP::Get.new("/")
      req["Cookie"] = cookie if cookie
      http.request(req)
    end
  end

  def test_four_workers_one_visitor_lose_nothing
    with_sessyncd do |url, dir|
      port = free_port
      log = File.join(dir, "puma.log")
      env = { "SESSYNC_URL" => url, "PORT" => port.to_s, "WEB_CONCURRENCY" => "4", "PUMA_THREADS" => "4",
              "SESSYNC_LIB" => Sessync::FFI.library_path, "SESSYNC_INCLUDE" => File.dirname(Sessync::FFI.header_path) }
      pid = Process.spawn(env, puma, "-C", File.join(EXAMPLES, "puma.rb"), File.join(EXAMPLES, "config.ru"),
                          out: log, err: log, pgroup: true)
      begin
        wait_until("puma on port #{port}", timeout: 60) do
          raise "puma exited: #{File.read(log)}" if Process.waitpid(pid, Process::WNOHANG)

          begin
            get(port).code == "200"
          rescue SystemCallError, IOError, Net::ReadTimeout
            false
          end
        end
        first = get(port)
        assert_match(/visits 1$/, first.body)
        cookie = first["set-cookie"][/\Arack\.session=[^;]+/]
        refute_nil cookie

        bodies = Queue.new
        threads = Array.new(32) do
          Thread.new do
            res = get(port, cookie)
            bodies << [res.code, res.body, res["set-cookie"]]
          end
        end
        threads.each(&:join)
        results = Array.new(32) { bodies.pop }
        assert(results.all? { |code, _, _| code == "200" }, results.inspect)
        counts = results.map { |_, body, _| body[/visits (\d+)/, 1].to_i }.sort
        assert_equal (2..33).to_a, counts, "each request saw a distinct count: none lost"
        pids = results.map { |_, body, _| body[/process (\d+)/, 1] }.uniq
        assert_operator pids.size, :>=, 2, "the requests were served by several workers: #{pids.inspect}"

        last = get(port, cookie)
        assert_match(/visits 34$/, last.body)
      ensure
        stop(pid)
        puts File.read(log) if !passed? && File.exist?(log)
      end
    end
  end
end
