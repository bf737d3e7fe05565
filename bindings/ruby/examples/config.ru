# A Rack app whose Puma workers share sessions through sessyncd:
#   target/release/sessyncd --unix /tmp/sessync.sock &
#   SESSYNC_URL=unix:///tmp/sessync.sock puma -C bindings/ruby/examples/puma.rb bindings/ruby/examples/config.ru
$LOAD_PATH.unshift File.expand_path("../lib", __dir__)
require "sessync/rack"

use Sessync::RackSession, url: ENV.fetch("SESSYNC_URL", "mem://"), expire_after: 24 * 3600

run lambda { |env|
  session = env["rack.session"]                          # the session's lock is held from here
  session["visits"] = (session["visits"] || 0) + 1       # so a read-modify-write loses nothing
  (session["pages"] ||= []) << env["PATH_INFO"] if env["PATH_INFO"] != "/"
  [200, { "content-type" => "text/plain" }, ["process #{Process.pid}: visits #{session["visits"]}\n"]]
}
