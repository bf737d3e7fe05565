# frozen_string_literal: true

module Sessync
  # A sessync call failed. +status+ is the C status number (nil for errors the binding
  # raises itself: SessionClosed, StoreClosed, LibraryNotFound), +status_name+ its name
  # without SESSYNC_STATUS_, and +message+ the engine's message, taken from the
  # sessync_error the failed call filled.
  class Error < StandardError
    attr_reader :status

    def initialize(message = nil, status = nil)
      super(message)
      @status = status
    end

    def status_name
      self.class::STATUS_NAME
    end

    STATUS_NAME = "ERROR"
  end

  # Declares one error class per status; the numbers are read from the header when the
  # library loads (Sessync::FFI), not written here.
  {
    "NotFound" => ["NOT_FOUND", "The session does not exist or has expired (or a key is absent)."],
    "Conflict" => ["CONFLICT", "A compare-and-swap saw another version than the expected one."],
    "LockTimeout" => ["LOCK_TIMEOUT", "The session's lock could not be taken within the wait."],
    "StaleToken" => ["STALE_TOKEN", "The lock's lease ran out and another request took it: nothing was written."],
    "InsufficientSize" => ["INSUFFICIENT_SIZE", "An output buffer was too small (the binding sizes its own: not expected)."],
    "Locked" => ["LOCKED", "The session is locked by another holder."],
    "Destroyed" => ["DESTROYED", "The session was destroyed; writes for it are refused."],
    "Rotated" => ["ROTATED", "The id was rotated away; it takes no more writes."],
    "Full" => ["FULL", "The store holds its maximum number of sessions."],
    "InvalidArgument" => ["INVALID_ARGUMENT", "An argument is malformed (an id, a URL, an option), NULL, or not UTF-8."],
    "InvalidJson" => ["INVALID_JSON", "A JSON argument is not valid JSON, or not of the required shape."],
    "TooLarge" => ["TOO_LARGE", "An input or a session exceeds a limit (max_session_bytes)."],
    "NotANumber" => ["NOT_A_NUMBER", "An increment met a value that is not an integer, or overflowed."],
    "IoError" => ["IO", "An I/O error."],
    "BackendError" => ["BACKEND", "The backend (sessyncd, Redis) failed or could not be reached."],
    "AuthError" => ["AUTH", "Authentication with the backend failed."],
    "ProtocolError" => ["PROTOCOL", "A protocol error with a remote store."],
    "InternalError" => ["PANIC", "An internal error of the engine: the handle involved is unusable."],
    "Cancelled" => ["CANCELLED", "The call was cancelled before it completed."],
    "SessionClosed" => ["SESSION_CLOSED", "The session was already committed or aborted (raised by the binding)."],
    "StoreClosed" => ["STORE_CLOSED", "The store was closed (raised by the binding)."],
    "LibraryNotFound" => ["LIBRARY_NOT_FOUND", "libsessync or sessync_ffi.h could not be found or loaded, or they do not match."],
  }.each do |klass, (name, _doc)|
    const_set(klass, Class.new(Error) { const_set(:STATUS_NAME, name) })
  end

  # Status names (the C enum's, without SESSYNC_STATUS_) to classes.
  ERROR_CLASSES = {
    "NOT_FOUND" => NotFound, "CONFLICT" => Conflict, "LOCK_TIMEOUT" => LockTimeout,
    "STALE_TOKEN" => StaleToken, "INSUFFICIENT_SIZE" => InsufficientSize, "LOCKED" => Locked, "DESTROYED" => Destroyed,
    "ROTATED" => Rotated, "FULL" => Full, "NULL_ARGUMENT" => InvalidArgument,
    "INVALID_ARGUMENT" => InvalidArgument, "INVALID_UTF8" => InvalidArgument,
    "INVALID_JSON" => InvalidJson, "TOO_LARGE" => TooLarge, "NOT_A_NUMBER" => NotANumber,
    "IO" => IoError, "BACKEND" => BackendError, "AUTH" => AuthError,
    "PROTOCOL" => ProtocolError, "PANIC" => InternalError, "CANCELLED" => Cancelled
  }.freeze
end
