<?php

declare(strict_types=1);

namespace Sessync\Tests\Support;

/**
 * Starts sessyncd, php-fpm and nginx in a temporary directory, as the tests and bench.php
 * need them, and stops them all (stop(), or the destructor) even when a test fails.
 * Readiness is polled (a socket that answers), never waited for with a fixed sleep.
 */
final class Stack
{
    public string $dir;
    public ?string $sessyncSocket = null;
    public ?int $httpPort = null;
    /** @var array<string, array{proc: resource, log: string}> */
    private array $procs = [];

    public function __construct()
    {
        $this->dir = sys_get_temp_dir() . '/sessync-php-' . getmypid() . '-' . bin2hex(random_bytes(4));
        mkdir($this->dir, 0700, true);
    }

    public static function root(): string
    {
        return \dirname(__DIR__, 4);
    }

    public static function phpDir(): string
    {
        return \dirname(__DIR__, 2);
    }

    /** Path of a required program, or an exception that names the Debian package. */
    public static function program(string $name, string $package): string
    {
        $path = trim((string) shell_exec('command -v ' . escapeshellarg($name) . ' 2>/dev/null'));
        if ($path === '') {
            foreach (['/usr/sbin', '/sbin', '/usr/local/sbin'] as $d) {
                if (is_executable("$d/$name")) {
                    return "$d/$name";
                }
            }
            throw new \RuntimeException("missing: $name (apt-get install $package; scripts/setup.sh installs it)");
        }
        return $path;
    }

    public static function freePort(): int
    {
        $s = stream_socket_server('tcp://127.0.0.1:0', $errno, $errstr);
        if ($s === false) {
            throw new \RuntimeException("cannot bind a port: $errstr");
        }
        $name = stream_socket_get_name($s, false);
        fclose($s);
        return (int) substr($name, strrpos($name, ':') + 1);
    }

    /** Starts sessyncd on a Unix socket; returns the store URL. */
    public function startSessyncd(): string
    {
        $bin = getenv('SESSYNCD') ?: self::root() . '/target/release/sessyncd';
        if (!is_executable($bin)) {
            throw new \RuntimeException("missing: $bin (cargo build --release --bin sessyncd)");
        }
        $this->sessyncSocket = $this->dir . '/sessync.sock';
        $this->spawn('sessyncd', [$bin, '--unix', $this->sessyncSocket]);
        $this->waitFor('sessyncd', function (): bool {
            $c = @stream_socket_client('unix://' . $this->sessyncSocket, $errno, $errstr, 1);
            if ($c === false) {
                return false;
            }
            fwrite($c, "PING\r\n");
            $line = fgets($c);
            fclose($c);
            return $line !== false && str_starts_with($line, '+PONG');
        });
        return 'unix://' . $this->sessyncSocket;
    }

    /**
     * Starts php-fpm (a static pool of $workers, as root with -R when root) and nginx in
     * front of it on a free loopback port, serving $script for every path.
     *
     * @param array<string, string> $env environment of the pool's workers
     * @param array<string, string> $adminValues php_admin_value settings of the pool
     *     (default ffi.enable=true)
     * @param array<string, string> $masterIni -d settings of php-fpm itself (ffi.preload)
     */
    public function startWeb(string $script, int $workers, array $env = [], array $adminValues = [], array $masterIni = []): int
    {
        $fpm = self::program('php-fpm8.2', 'php8.2-fpm');
        $nginx = self::program('nginx', 'nginx');
        $d = $this->dir;
        $root = posix_geteuid() === 0;
        $user = posix_getpwuid(posix_geteuid())['name'];
        $group = posix_getgrgid(posix_getegid())['name'];
        $pool = "[global]\npid = $d/fpm.pid\nerror_log = $d/fpm-error.log\ndaemonize = no\n\n"
            . "[app]\nuser = $user\ngroup = $group\nlisten = $d/fpm.sock\nlisten.mode = 0600\n"
            . "pm = static\npm.max_children = $workers\ncatch_workers_output = yes\nclear_env = yes\n"
            . "php_admin_flag[log_errors] = on\n"
            . "php_admin_value[error_log] = $d/php-error.log\nphp_admin_flag[display_errors] = off\n";
        foreach ($adminValues + ['ffi.enable' => 'true'] as $k => $v) {
            $pool .= "php_admin_value[$k] = $v\n";
        }
        foreach ($env as $k => $v) {
            $pool .= "env[$k] = $v\n";
        }
        file_put_contents("$d/fpm.conf", $pool);
        // Debian's php.ini for php-fpm (FFI is loaded by its conf.d); -R lets the pool run
        // as root when the tests do (sessyncd's socket is mode 0600: the pool runs as the
        // user that started sessyncd).
        $args = [$fpm, '-F', '-y', "$d/fpm.conf"];
        foreach ($masterIni as $k => $v) {
            array_push($args, '-d', "$k=$v");
        }
        if ($root) {
            $args[] = '-R';
        }
        $this->spawn('php-fpm', $args);
        $this->waitFor('php-fpm', fn () => file_exists("$d/fpm.sock"));

        $this->httpPort = self::freePort();
        @mkdir("$d/nginx", 0700);
        $userLine = $root ? "user $user $group;\n" : '';
        $conf = $userLine . "pid $d/nginx.pid;\nerror_log $d/nginx-error.log;\nworker_processes 2;\n"
            . "events { worker_connections 1024; }\n"
            . "http {\n  access_log off;\n"
            . "  client_body_temp_path $d/nginx/body;\n  fastcgi_temp_path $d/nginx/fastcgi;\n"
            . "  proxy_temp_path $d/nginx/proxy;\n  uwsgi_temp_path $d/nginx/uwsgi;\n  scgi_temp_path $d/nginx/scgi;\n"
            . "  server {\n    listen 127.0.0.1:{$this->httpPort};\n"
            . "    location / {\n      include /etc/nginx/fastcgi_params;\n"
            . "      fastcgi_param SCRIPT_FILENAME $script;\n      fastcgi_pass unix:$d/fpm.sock;\n    }\n  }\n}\n";
        file_put_contents("$d/nginx.conf", $conf);
        $this->spawn('nginx', [$nginx, '-p', "$d/nginx", '-c', "$d/nginx.conf", '-g', 'daemon off;', '-e', "$d/nginx-error.log"]);
        $this->waitFor('nginx and php-fpm', function (): bool {
            $r = Http::get($this->httpPort, '/?do=ping', timeout: 2.0);
            return $r !== null && $r['status'] === 200;  // through nginx and a php-fpm worker
        });
        return $this->httpPort;
    }

    /** @param list<string> $args */
    private function spawn(string $name, array $args): void
    {
        $log = "{$this->dir}/$name.out";
        $proc = proc_open($args, [0 => ['file', '/dev/null', 'r'], 1 => ['file', $log, 'a'], 2 => ['file', $log, 'a']], $pipes);
        if (!\is_resource($proc)) {
            throw new \RuntimeException("cannot start $name");
        }
        $this->procs[$name] = ['proc' => $proc, 'log' => $log];
    }

    /** Polls $ready (up to 30 s) while the process runs; fails with its log otherwise. */
    private function waitFor(string $name, callable $ready): void
    {
        $deadline = microtime(true) + 30;
        while (microtime(true) < $deadline) {
            if ($ready()) {
                return;
            }
            foreach ($this->procs as $pname => $p) {
                $st = proc_get_status($p['proc']);
                if (!$st['running']) {
                    throw new \RuntimeException("$pname exited ({$st['exitcode']}) while waiting for $name: " . $this->logs());
                }
            }
            usleep(20000);
        }
        throw new \RuntimeException("$name not ready after 30 s: " . $this->logs());
    }

    public function logs(): string
    {
        $out = '';
        foreach (glob("{$this->dir}/*.{out,log}", GLOB_BRACE) as $f) {
            $text = (string) @file_get_contents($f);
            if (trim($text) !== '') {
                $out .= "\n--- " . basename($f) . "\n" . substr($text, -4000);
            }
        }
        return $out;
    }

    /** Stops every process this stack started (TERM, then KILL) and removes the directory. */
    public function stop(): void
    {
        foreach (array_reverse($this->procs, true) as $name => $p) {
            $st = proc_get_status($p['proc']);
            if ($st['running']) {
                // php-fpm and nginx: QUIT/TERM to the master stops the workers too.
                posix_kill($st['pid'], SIGTERM);
                $deadline = microtime(true) + 10;
                while (proc_get_status($p['proc'])['running'] && microtime(true) < $deadline) {
                    usleep(10000);
                }
                if (proc_get_status($p['proc'])['running']) {
                    posix_kill($st['pid'], SIGKILL);
                }
            }
            proc_close($p['proc']);
        }
        $this->procs = [];
        if (is_dir($this->dir) && getenv('SESSYNC_KEEP_TMP') === false) {
            exec('rm -rf ' . escapeshellarg($this->dir));
        }
    }

    public function __destruct()
    {
        $this->stop();
    }
}
