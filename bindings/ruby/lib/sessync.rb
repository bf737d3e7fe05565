# frozen_string_literal: true

# sessync for Ruby: Sessync::Store and Sessync::Session over libsessync's C ABI through
# Fiddle, and Sessync::RackSession (require "sessync/rack"), a Rack session middleware.
require_relative "sessync/version"
require_relative "sessync/errors"
require_relative "sessync/ffi"
require_relative "sessync/util"
require_relative "sessync/store"
require_relative "sessync/session"

module Sessync
  # A fresh session id: 32 base64url characters of 192 random bits.
  def self.generate_id
    out = Fiddle::Pointer.malloc(FFI.constants.fetch("SESSYNC_ID_MAX_LEN") + 1, Fiddle::RUBY_FREE)
    len = FFI.u64_out
    FFI.check(:sessync_id_generate, out, FFI.constants.fetch("SESSYNC_ID_MAX_LEN") + 1, len)
    out[0, FFI.read_u64(len)]
  end

  # Whether +id+ is a well-formed session id (16 to 48 characters of A-Z a-z 0-9 - _).
  def self.valid_id?(id)
    return false unless id.is_a?(String) && !id.include?("\0")

    FFI.check(:sessync_id_check, "#{id}\0")
    true
  rescue InvalidArgument
    false
  end

  # Raises InvalidArgument, with the engine's reason, unless +id+ is well formed.
  def self.check_id(id)
    FFI.check(:sessync_id_check, Util.cstr(id, "id"))
    id
  end

  # The library's version string.
  def self.library_version
    FFI.sessync_version.to_s
  end
end
