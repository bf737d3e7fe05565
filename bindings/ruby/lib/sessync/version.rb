# frozen_string_literal: true

module Sessync
  VERSION = "0.1.0"
end
