# frozen_string_literal: true

require "json"

module Sessync
  # Argument checks and JSON, shared by Store and Session. Wrong Ruby types are the
  # language's own errors (TypeError, ArgumentError) before any call; what the engine
  # refuses is a Sessync::Error with the engine's message.
  module Util
    module_function

    # A NUL-terminated copy of a String (or Symbol) argument for a `const char *`.
    def cstr(value, what)
      value = value.to_s if value.is_a?(Symbol)
      raise TypeError, "#{what} must be a String, not #{value.class}" unless value.is_a?(String)
      raise ArgumentError, "#{what} contains a NUL byte" if value.include?("\0")

      "#{value}\0"
    end

    def bytes(value, what)
      raise TypeError, "#{what} must be a String, not #{value.class}" unless value.is_a?(String)

      value.b
    end

    # Seconds (Numeric) to whole milliseconds; nil is +default+.
    def ms(seconds, what, default)
      return default if seconds.nil?
      raise TypeError, "#{what} must be a number of seconds, not #{seconds.class}" unless seconds.is_a?(Numeric)
      raise ArgumentError, "#{what} must not be negative" if seconds.negative?

      (seconds * 1000).round
    end

    def integer(value, what)
      raise TypeError, "#{what} must be an Integer, not #{value.class}" unless value.is_a?(Integer)
      raise RangeError, "#{what} does not fit in 64 bits" unless value.between?(-(2**63), 2**63 - 1)

      value
    end

    # JSON text of a session value. Only JSON's types are accepted (nil, true, false,
    # Integer, finite Float, String, Symbol as a string, Array, Hash with String or Symbol
    # keys): any other object is a TypeError, never its #to_s.
    def dump(value)
      check_json!(value, 0)
      JSON.generate(value, quirks_mode: true)
    rescue JSON::GeneratorError => e
      raise TypeError, e.message
    end

    def load(json)
      JSON.parse(json, quirks_mode: true)
    end

    def check_json!(value, depth)
      raise ArgumentError, "value nests too deeply" if depth > 100

      case value
      when nil, true, false, Integer, String, Symbol
        nil
      when Float
        raise TypeError, "#{value} is not valid JSON (a Float must be finite)" unless value.finite?
      when Array
        value.each { |v| check_json!(v, depth + 1) }
      when Hash
        value.each do |k, v|
          raise TypeError, "a Hash key must be a String or Symbol for JSON, not #{k.class}" unless k.is_a?(String) || k.is_a?(Symbol)

          check_json!(v, depth + 1)
        end
      else
        raise TypeError, "#{value.class} is not JSON serializable"
      end
    end

    # An option's value as sessync_options_set reads it: durations as seconds or
    # "30m"-style strings, booleans as true/false.
    def option_text(key, value)
      case value
      when true, false, String, Integer then value.to_s
      when Symbol then value.to_s
      when Float then "#{(value * 1000).round}ms"
      when nil then ""
      else
        return value.to_i.to_s if value.respond_to?(:to_i) && value.is_a?(Numeric)

        raise TypeError, "option #{key} must be a String, Integer, Float or boolean, not #{value.class}"
      end
    end
  end
end
