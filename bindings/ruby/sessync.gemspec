# frozen_string_literal: true

require_relative "lib/sessync/version"

Gem::Specification.new do |spec|
  spec.name = "sessync"
  spec.version = Sessync::VERSION
  spec.summary = "One session store shared by every worker: sessync's C ABI through Fiddle, and a Rack session middleware"
  spec.description = <<~DESC
    Sessync::Store and Sessync::Session over libsessync (loaded at run time with Fiddle,
    Ruby's standard library), and Sessync::RackSession, a Rack 2 session middleware whose
    concurrent requests of one visitor lose nothing. Needs libsessync and sessync_ffi.h
    (SESSYNC_LIB / SESSYNC_INCLUDE, an installed library, or a sessync checkout's build).
  DESC
  spec.license = "MIT OR Apache-2.0"
  spec.authors = ["sessync developers"]
  spec.required_ruby_version = ">= 3.1"
  spec.files = Dir["lib/**/*.rb"] + Dir["examples/*"]
  spec.require_paths = ["lib"]
  spec.add_dependency "fiddle", ">= 1.1"
  spec.add_dependency "rack", ">= 2.2", "< 3"
end
