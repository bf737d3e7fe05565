<?php

// Autoloads the Sessync\ classes without Composer (require this file); with Composer, the
// "autoload" section of composer.json does the same.
spl_autoload_register(static function (string $class): void {
    if (str_starts_with($class, 'Sessync\\') && !str_contains($class, '\\Tests\\')) {
        $file = __DIR__ . '/src/' . str_replace('\\', '/', substr($class, 8)) . '.php';
        if (is_file($file)) {
            require $file;
        }
    }
});
