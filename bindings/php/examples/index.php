<?php
// A visit counter whose php-fpm workers share sessions through sessyncd.
// nginx.conf and fpm-pool.conf beside this file serve it; README, "Using it from PHP".
declare(strict_types=1);
require __DIR__ . '/../autoload.php';   // or Composer's vendor/autoload.php

session_set_save_handler(new Sessync\Handler(getenv('SESSYNC_URL') ?: 'unix:///run/sessync.sock'));
session_start();                        // the session's lock: this visitor's other requests wait
$_SESSION['visits'] = ($_SESSION['visits'] ?? 0) + 1;
if (isset($_GET['login'])) {
    session_regenerate_id(true);        // a rotation: new id, same data; the old id stops working
    $_SESSION['user'] = $_GET['login'];
}
session_write_close();                  // writes, releases the lock (or at the end of the request)

header('Content-Type: text/plain');
printf("worker %d: visits %d%s\n", getmypid(), $_SESSION['visits'], isset($_SESSION['user']) ? ", user {$_SESSION['user']}" : '');
