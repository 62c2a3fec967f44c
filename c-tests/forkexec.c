/* fork and exec beside a live connection: a child that closes its copy of
 * the socket, a child that runs exit() (atexit handlers, destructors), a
 * forked child that execs a shell, a child whose stdout is a pipe,
 * posix_spawn (vfork-style) - after each, the parent's connection still
 * works. A SOCK_CLOEXEC socket is not open in the exec'd image. */
#include "cmdpeer.h"

#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <sys/wait.h>

extern char **environ;

static void ping(int fd, const char *when)
{
    char c = 0;
    send_all(fd, "d", 1);
    CHECK(wait_fd(fd, 1 /* POLLIN */, 5000), "%s: no reply", when);
    ssize_t n = recv(fd, &c, 1, 0);
    CHECK(n == 1 && c == 'D', "%s: recv %zd (%s)", when, n, n < 0 ? strerror(errno) : "");
}

static int wait_child(pid_t pid)
{
    int st;
    int64_t end = now_ms() + 10000;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        CHECK(r >= 0, "waitpid: %s", strerror(errno));
        if (r == pid)
            break;
        CHECK(now_ms() < end, "child %d did not exit within 10 s", (int)pid);
        sleep_ms(10);
    }
    CHECK(WIFEXITED(st), "child %d died of signal %d", (int)pid, WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    return WEXITSTATUS(st);
}

static void subject(void)
{
    sync_wait("peer-listening");
    int a = tcp_connect(AF_INET, ct_peer(), ct_port(0));
    ping(a, "before fork");

    pid_t pid = SYS(fork());
    if (pid == 0) {
        close(a);
        _exit(0);
    }
    CHECK(wait_child(pid) == 0, "child 1 status");
    ping(a, "after a child closed its copy");

    pid = SYS(fork());
    if (pid == 0)
        exit(3);
    CHECK(wait_child(pid) == 3, "child 2 status");
    ping(a, "after a child ran exit()");

    pid = SYS(fork());
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", "exit 7", (char *)NULL);
        _exit(127);
    }
    CHECK(wait_child(pid) == 7, "exec'd shell: wrong status");
    ping(a, "after fork+exec");

    /* The exec'd image's stdout is a pipe we read. */
    int p[2];
    SYS(pipe(p));
    pid = SYS(fork());
    if (pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        execl("/bin/echo", "echo", "hello from exec", (char *)NULL);
        _exit(127);
    }
    SYS(close(p[1]));
    char buf[64] = {0};
    size_t len = 0;
    ssize_t n;
    while ((n = read(p[0], buf + len, sizeof buf - 1 - len)) > 0)
        len += (size_t)n;
    SYS(close(p[0]));
    CHECK(wait_child(pid) == 0, "echo status");
    CHECK(strcmp(buf, "hello from exec\n") == 0, "exec'd echo wrote '%s'", buf);

    /* SOCK_CLOEXEC: gone in the new image; a plain fd is still there. */
    int b = SYS(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    struct sockaddr_storage ss;
    socklen_t sl = mkaddr(&ss, AF_INET, ct_peer(), ct_port(0));
    SYS(connect(b, (struct sockaddr *)&ss, sl));
    CHECK(SYS(fcntl(b, F_GETFD)) & FD_CLOEXEC, "SOCK_CLOEXEC not reported by F_GETFD");
    int keep = SYS(open("/dev/null", O_RDONLY));
    char script[128];
    snprintf(script, sizeof script, "[ ! -e /dev/fd/%d ] && [ -e /dev/fd/%d ]", b, keep);
    pid = SYS(fork());
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", script, (char *)NULL);
        _exit(127);
    }
    CHECK(wait_child(pid) == 0, "SOCK_CLOEXEC fd %d open after exec (or fd %d closed)", b, keep);
    SYS(close(keep));
    ping(b, "CLOEXEC socket after exec");

    /* posix_spawn (glibc: clone with CLONE_VM|CLONE_VFORK). */
    char *argv[] = {"true", NULL};
    int rc = posix_spawn(&pid, "/bin/true", NULL, NULL, argv, environ);
    CHECK(rc == 0, "posix_spawn: %s", strerror(rc));
    CHECK(wait_child(pid) == 0, "posix_spawn /bin/true status");
    ping(a, "after posix_spawn");
    ping(b, "second socket after posix_spawn");

    send_all(a, "q", 1);
    send_all(b, "q", 1);
    expect_eof(a, 5000);
    expect_eof(b, 5000);
    SYS(close(a));
    SYS(close(b));
    ct_log("ok");
}

static void peer_fn(void)
{
    int l = tcp_listen(AF_INET, ct_peer(), ct_port(0), 8);
    sync_signal("peer-listening");
    cmdpeer_serve(l, 2);
}

int main(int argc, char **argv) { return ct_main(argc, argv, "forkexec", subject, peer_fn); }
