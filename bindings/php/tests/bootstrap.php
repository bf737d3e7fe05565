<?php

declare(strict_types=1);

require __DIR__ . '/../autoload.php';
spl_autoload_register(static function (string $class): void {
    if (str_starts_with($class, 'Sessync\\Tests\\')) {
        $file = __DIR__ . '/' . str_replace('\\', '/', substr($class, 14)) . '.php';
        if (is_file($file)) {
            require $file;
        }
    }
});
