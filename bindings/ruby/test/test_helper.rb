# frozen_string_literal: true

$LOAD_PATH.unshift File.expand_path("../lib", __dir__)
require "minitest/autorun"
require "socket"
require "tmpdir"
require "timeout"
require "sessync"

module SessyncTestHelper
  ROOT = File.expand_path("../../..", __dir__)

  module_function

  def sessyncd_path
    path = ENV["SESSYNCD"] || File.join(ROOT, "target", "release", "sessyncd")
    raise "missing #{path}: cargo build --release --bin sessyncd" unless File.executable?(path)

    path
  end

  # Polls until +block+ is truthy; fails after +timeout+ seconds.
  def wait_until(what, timeout: 30)
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
    loop do
      return if yield
      raise "timed out waiting for #{what}" if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline

      sleep 0.02
    end
  end

  # Starts sessyncd on a Unix socket in a fresh temporary directory; yields the store URL
  # and stops the daemon (and removes the directory) even when the block fails.
  def with_sessyncd
    Dir.mktmpdir("sessync-rb-") do |dir|
      sock = File.join(dir, "sessyncd.sock")
      log = File.join(dir, "sessyncd.log")
      pid = Process.spawn(sessyncd_path, "--unix", sock, out: log, err: log, pgroup: true)
      begin
        wait_until("sessyncd on #{sock}") do
          raise "sessyncd exited: #{File.read(log)}" if Process.waitpid(pid, Process::WNOHANG)

          begin
            UNIXSocket.open(sock).close
            true
          rescue SystemCallError
            false
          end
        end
        yield "unix://#{sock}", dir
      ensure
        stop(pid)
      end
    end
  end

  # Stops a process started with pgroup: true, and then whatever is left of its group.
  def stop(pid)
    begin
      Process.kill("TERM", pid)
      Timeout.timeout(15) { Process.waitpid(pid) }
    rescue Errno::ESRCH, Errno::ECHILD
      nil
    rescue Timeout::Error
      Process.kill("KILL", pid)
      Process.waitpid(pid)
    end
    begin
      Process.kill("KILL", -pid)
    rescue Errno::ESRCH, Errno::EPERM
      nil
    end
  end

  def free_port
    server = TCPServer.new("127.0.0.1", 0)
    server.addr[1]
  ensure
    server&.close
  end
end
