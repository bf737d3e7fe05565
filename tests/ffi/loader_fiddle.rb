# Ruby Fiddle reads the flat header (tests/ffi_header.rs runs this).
#
#     ruby loader_fiddle.rb HEADER [LIBRARY]
#
# Fiddle has no C parser for a whole header: Fiddle::Importer takes one prototype at a
# time (`extern`) and type names by `typealias`. So this gives it the header's one-line
# typedefs (`typedef uint32_t sessync_status;`, and each callback typedef as `void *`)
# and then every prototype line as it is. With LIBRARY, `dlload` binds each prototype
# (extern) and the functions are called; without, each prototype is only parsed.
# Fiddle 1.1.0 (Ruby 3.1) has no `bool` (Fiddle::TYPE_BOOL came later): there, `bool` is
# given as `unsigned char`, the same size in the C ABI of every platform sessync builds on.
# Prints key=value lines that the Rust test compares with the header and the crate.
require "fiddle"
require "fiddle/import"

header, lib = ARGV
text = File.read(header)

module Sessync
  extend Fiddle::Importer
end
lib ? Sessync.dlload(lib) : Sessync.dlload # dlload also starts the type aliases
text.scan(/^typedef (\w+) (\w+);$/) { |orig, name| Sessync.typealias(name, orig) }
text.scan(/^typedef \w+ \(\*(\w+)\)\(.*\);$/) { |(name)| Sessync.typealias(name, "void *") }
Sessync.typealias("bool", "unsigned char") unless Fiddle.const_defined?(:TYPE_BOOL)
puts "bool_alias=#{!Fiddle.const_defined?(:TYPE_BOOL)}"

prototypes = text.lines.map(&:chomp).select { |l| l.end_with?(");") && !l.start_with?("typedef ") }
prototypes.each do |line|
  if lib
    Sessync.extern(line)
  else
    Sessync.send(:parse_signature, line, Sessync.send(:type_alias))
  end
end
puts "prototypes=#{prototypes.size}"

if lib
  constant = ->(name) { Integer(text[/\b#{name} = (-?\d+)/, 1]) }
  puts "header_version=#{constant.('SESSYNC_VERSION_NUMBER')}"
  puts "version=#{Sessync.sessync_version_number}"
  puts "not_found=#{constant.('SESSYNC_STATUS_NOT_FOUND')}"
  puts "status_str=#{Sessync.sessync_status_str(constant.('SESSYNC_STATUS_NOT_FOUND')).to_s}"
  puts "status_str_1=#{Sessync.sessync_status_str(1).to_s}"
end
puts "ok"
