# frozen_string_literal: true

module Sessync
  VERSION = "0.2.0"
end
