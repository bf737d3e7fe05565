# frozen_string_literal: true

require "fiddle"
require "fiddle/import"

module Sessync
  # The C ABI through Fiddle (Ruby's standard library). Loads libsessync and reads the
  # declarations from the flat header sessync_ffi.h, each found in the documented order
  # (README, "Loading the library at run time"):
  #
  # library: SESSYNC_LIB (the only choice when set), then libsessync.so.0 through the
  # dynamic loader, then this repository's target/release/libsessync.so;
  # header: SESSYNC_INCLUDE (a directory), then pkg-config's includedir,
  # /usr/local/include, /usr/include, then this repository's include/.
  #
  # Every prototype line of the header is given to Fiddle::Importer#extern as it is, after
  # a typealias for each of the header's typedefs. Fiddle 1.1.0 (Ruby 3.1) has no bool:
  # there it is `unsigned char`, the same size in the C ABI of every platform sessync
  # builds on. Fiddle releases the GVL during each call (Fiddle::Function's need_gvl is
  # false), so a call waiting for a session's lock never holds up the process's other
  # Ruby threads.
  module FFI
    extend Fiddle::Importer

    HEADER_NAME = "sessync_ffi.h"
    SONAME = "libsessync.so.0"
    LIB_NAME = "libsessync.so"
    ERROR_SIZE = 512 # sizeof(sessync_error): status, len, message[504]
    BUF_SIZE = Fiddle::SIZEOF_VOIDP + Fiddle::SIZEOF_SIZE_T

    class << self
      attr_reader :library_path, :header_path, :header_version, :statuses, :status_names, :constants
    end

    def self.repo_root
      File.expand_path("../../../..", __dir__)
    end

    def self.header_candidates
      env = ENV["SESSYNC_INCLUDE"]
      return [["SESSYNC_INCLUDE", File.join(env, HEADER_NAME)]] if env && !env.empty?

      out = []
      inc = begin
        IO.popen(["pkg-config", "--variable=includedir", "sessync"], err: File::NULL, &:read).to_s.strip
      rescue SystemCallError
        ""
      end
      out << ["pkg-config", File.join(inc, HEADER_NAME)] unless inc.empty?
      out << ["installed", File.join("/usr/local/include", HEADER_NAME)]
      out << ["installed", File.join("/usr/include", HEADER_NAME)]
      out << ["repository", File.join(repo_root, "include", HEADER_NAME)]
      out
    end

    def self.library_candidates
      env = ENV["SESSYNC_LIB"]
      # An explicit choice is the only one: a wrong path must not silently load another.
      return [["SESSYNC_LIB", env]] if env && !env.empty?

      out = [["dynamic loader", SONAME]]
      target = ENV["CARGO_TARGET_DIR"]
      out << ["build tree", File.join(File.expand_path(target, repo_root), "release", LIB_NAME)] if target && !target.empty?
      out << ["build tree", File.join(repo_root, "target", "release", LIB_NAME)]
      out
    end

    def self.load!
      tried = []
      found = header_candidates.find do |where, path|
        File.file?(path) || (tried << "#{where}: #{path}" && false)
      end
      unless found
        raise LibraryNotFound, "sessync: cannot find the header #{HEADER_NAME}; looked in #{tried.join("; ")} " \
                               "(set SESSYNC_INCLUDE to the directory that holds it)"
      end
      @header_path = found[1]
      text = File.read(@header_path)

      tried = []
      library_candidates.each do |where, path|
        if where == "build tree" && !File.file?(path)
          tried << "#{where}: #{path} (absent)"
          next
        end
        begin
          dlload(path)
          @library_path = path
          break
        rescue Fiddle::DLError => e
          tried << "#{where}: #{path} (#{e.message})"
        end
      end
      unless @library_path
        raise LibraryNotFound, "sessync: cannot load libsessync; tried #{tried.join("; ")} " \
                               "(set SESSYNC_LIB to the library's path, or build it with `cargo build --release --lib`)"
      end

      text.scan(/^typedef (\w+) (\w+);$/) { |orig, name| typealias(name, orig) }
      text.scan(/^typedef \w+ \(\*(\w+)\)\(.*\);$/) { |(name)| typealias(name, "void *") }
      typealias("bool", "unsigned char") unless Fiddle.const_defined?(:TYPE_BOOL)
      text.each_line do |line|
        line = line.chomp
        extern(line) if line.end_with?(");") && !line.start_with?("typedef ")
      end

      @constants = {}
      text.scan(/\b(SESSYNC_\w+) = (-?\d+)/) { |name, value| @constants[name] = Integer(value) }
      @statuses = {}
      @status_names = {}
      @constants.each do |name, value|
        next unless name.start_with?("SESSYNC_STATUS_")

        short = name.delete_prefix("SESSYNC_STATUS_")
        @statuses[short] = value
        @status_names[value] = short
      end
      @header_version = @constants.fetch("SESSYNC_VERSION_NUMBER")
      have = sessync_version_number
      return if have == @header_version

      raise LibraryNotFound, "sessync: the library #{@library_path} is version #{have} but the header " \
                             "#{@header_path} is version #{@header_version}; refusing a mismatch"
    end

    load!

    # A zeroed sessync_error for one call (freed by Ruby's GC).
    def self.new_error
      p = Fiddle::Pointer.malloc(ERROR_SIZE, Fiddle::RUBY_FREE)
      p[0, 8] = "\0" * 8
      p
    end

    # The exception for a failed call: its class from the status, its message from the
    # sessync_error the call filled.
    def self.error_from(status, err)
      st = err[0, 4].unpack1("L")
      st = status if st.zero?
      len = [err[4, 4].unpack1("L"), ERROR_SIZE - 8].min
      message = err[8, len].force_encoding(Encoding::UTF_8)
      message = sessync_status_str(st).to_s if message.empty?
      name = @status_names[st] || "INVALID_ARGUMENT"
      (ERROR_CLASSES[name] || Error).new(message, st)
    end

    # Calls +fn+ with the arguments and a fresh sessync_error; raises on failure.
    def self.check(fn, *args)
      err = new_error
      status = public_send(fn, *args, err)
      raise error_from(status, err) unless status.zero?

      nil
    end

    def self.new_buf
      p = Fiddle::Pointer.malloc(BUF_SIZE, Fiddle::RUBY_FREE)
      p[0, BUF_SIZE] = "\0" * BUF_SIZE
      p
    end

    # The bytes of a sessync_buf the library filled (nil when empty: data == NULL), then
    # frees them.
    def self.take_buf(buf)
      addr = buf[0, Fiddle::SIZEOF_VOIDP].unpack1("J")
      return nil if addr.zero?

      len = buf[Fiddle::SIZEOF_VOIDP, Fiddle::SIZEOF_SIZE_T].unpack1("J")
      bytes = Fiddle::Pointer.new(addr)[0, len]
      sessync_buf_free(buf)
      bytes.force_encoding(Encoding::UTF_8)
    end

    def self.u64_out
      p = Fiddle::Pointer.malloc(8, Fiddle::RUBY_FREE)
      p[0, 8] = "\0" * 8
      p
    end

    def self.read_u64(p)
      p[0, 8].unpack1("Q")
    end

    def self.read_i64(p)
      p[0, 8].unpack1("q")
    end

    def self.read_ptr(p)
      p[0, Fiddle::SIZEOF_VOIDP].unpack1("J")
    end

    def self.truthy(v)
      v == true || (v.is_a?(Integer) && v != 0)
    end
  end
end
