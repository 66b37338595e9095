/* main.c - the demo shop service: command line, start-up, accept loop and
 * graceful shutdown.
 *
 *   shop --port PORT [--db PATH]          (or env PORT, SHOP_DB)
 *
 * Threads: main accepts (at most MAX_CONNECTIONS connections at once, beyond
 * that it stops accepting until one ends), one detached thread per
 * connection, and one thread waiting for SIGTERM/SIGINT.  On either signal:
 * stop accepting, let every in-flight request finish (up to DRAIN_MS), exit 0. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "http.h"
#include "shop.h"
#include "store.h"

#define MAX_CONNECTIONS 256
#define DRAIN_MS 10000
#define SEND_TIMEOUT_S 30

#if defined(__SANITIZE_ADDRESS__)
#define THREAD_STACK (2u << 20)
#else
#define THREAD_STACK (512u << 10)
#endif

struct shop_features shop_features;
const char *shop_db_path = "./shop.db";
char shop_started_at[40];
atomic_bool shop_stopping;
int shop_wake_fd = -1;

static int wake_write_fd = -1;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv;       /* CLOCK_MONOTONIC; signalled when `active` drops or shutdown starts */
static int active;              /* connection threads running */

/* ------------------------------------------------------------ shared helpers */

double shop_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

void shop_sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

void shop_log(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    flockfile(stdout);
    vfprintf(stdout, fmt, ap);
    fputc('\n', stdout);
    funlockfile(stdout);
    va_end(ap);
}

/* ------------------------------------------------------------ start-up */

static void set_features(void)
{
    int major = 0, minor = 0, patch = 0;
    sscanf(SHOP_VERSION, "%d.%d.%d", &major, &minor, &patch);
    shop_features.badges = major > 1 || (major == 1 && minor >= 1);
    shop_features.faulty = strcmp(SHOP_VERSION, "1.2.0") == 0;
    shop_features.schema = shop_features.badges ? 2 : 1;
}

static void set_started_at(void)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(shop_started_at, 24, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(shop_started_at + n, sizeof shop_started_at - n, ".%03uZ", (unsigned)(ts.tv_nsec / 1000000L) % 1000u);
}

static void usage(FILE *f)
{
    fputs("usage: shop-" SHOP_VERSION " --port PORT [--db PATH]\n"
          "  --port PORT   listen on 127.0.0.1:PORT (default: env PORT)\n"
          "  --db PATH     SQLite database, created if missing (default: env SHOP_DB, else ./shop.db)\n"
          "  --version     print the version\n", f);
}

static int parse_port(const char *s)
{
    char *end;
    long v = s ? strtol(s, &end, 10) : -1;
    return s && *s && !*end && v > 0 && v < 65536 ? (int)v : -1;
}

static int listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0
        || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 1024) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* ------------------------------------------------------------ threads */

static void *signal_main(void *arg)
{
    const sigset_t *set = arg;
    int sig = 0;
    while (sigwait(set, &sig) != 0 || (sig != SIGTERM && sig != SIGINT))
        ;
    shop_log("shop %s: %s, stopping: no new connections, in-flight requests finish", SHOP_VERSION,
             sig == SIGTERM ? "SIGTERM" : "SIGINT");
    atomic_store(&shop_stopping, true);
    if (write(wake_write_fd, "x", 1) < 0)
        perror("shop: wake");
    pthread_mutex_lock(&mu);
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    return NULL;
}

static void *conn_main(void *arg)
{
    struct api_ctx ctx = {0};
    http_serve((int)(intptr_t)arg, &ctx);
    api_ctx_close(&ctx);
    pthread_mutex_lock(&mu);
    active--;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    return NULL;
}

static void start_connection(int fd, const pthread_attr_t *attr)
{
    int one = 1;
    struct timeval tv = {.tv_sec = SEND_TIMEOUT_S};
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    pthread_t t;
    pthread_mutex_lock(&mu);
    active++;
    pthread_mutex_unlock(&mu);
    int e = pthread_create(&t, attr, conn_main, (void *)(intptr_t)fd);
    if (e != 0) {
        fprintf(stderr, "shop: no thread for a connection: %s\n", strerror(e));
        close(fd);
        pthread_mutex_lock(&mu);
        active--;
        pthread_mutex_unlock(&mu);
    }
}

/* Accept until shutdown; at most MAX_CONNECTIONS at once. */
static void accept_loop(int lfd, const pthread_attr_t *attr)
{
    for (;;) {
        pthread_mutex_lock(&mu);
        while (active >= MAX_CONNECTIONS && !atomic_load(&shop_stopping))
            pthread_cond_wait(&cv, &mu);
        pthread_mutex_unlock(&mu);
        if (atomic_load(&shop_stopping))
            break;
        struct pollfd p[2] = {{.fd = lfd, .events = POLLIN}, {.fd = shop_wake_fd, .events = POLLIN}};
        if (poll(p, 2, -1) < 0) {
            if (errno != EINTR)
                perror("shop: poll");
            continue;
        }
        if (p[1].revents)
            break;
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0) {
            start_connection(fd, attr);
        } else if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            perror("shop: accept");
            shop_sleep_ms(100);
        }
    }
    /* Connections the kernel completed before we stopped are clients already
     * on their way: serve them too rather than reset them. */
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0 && errno == EINTR)
            continue;
        if (fd < 0)
            break;
        pthread_mutex_lock(&mu);
        bool room = active < MAX_CONNECTIONS;
        pthread_mutex_unlock(&mu);
        if (room)
            start_connection(fd, attr);
        else
            close(fd);
    }
    close(lfd);
}

/* Wait for the connection threads, at most DRAIN_MS; how many are left. */
static int drain(void)
{
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += DRAIN_MS / 1000;
    pthread_mutex_lock(&mu);
    if (active > 0)
        shop_log("shop %s: waiting for %d connection(s)", SHOP_VERSION, active);
    while (active > 0 && pthread_cond_timedwait(&cv, &mu, &dl) != ETIMEDOUT)
        ;
    int left = active;
    pthread_mutex_unlock(&mu);
    return left;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"port", required_argument, NULL, 'p'},
        {"db", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *port_s = getenv("PORT");
    if (getenv("SHOP_DB") && *getenv("SHOP_DB"))
        shop_db_path = getenv("SHOP_DB");
    int c;
    while ((c = getopt_long(argc, argv, "p:d:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'p': port_s = optarg; break;
        case 'd': shop_db_path = optarg; break;
        case 'h': usage(stdout); return 0;
        case 'V': puts(SHOP_VERSION); return 0;
        default: usage(stderr); return 2;
        }
    }
    int port = parse_port(port_s);
    if (optind < argc || port < 0) {
        fprintf(stderr, "shop: %s\n", optind < argc ? "unexpected argument" : "--port PORT (1-65535) is required");
        usage(stderr);
        return 2;
    }

    setvbuf(stdout, NULL, _IOLBF, 0);
    set_features();
    set_started_at();

    /* Signals: SIGTERM/SIGINT go to signal_main only (every thread inherits
     * this mask); a client that leaves must not kill us. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    int pfd[2];
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pipe2(pfd, O_CLOEXEC) < 0) {
        perror("shop: pipe");
        return 1;
    }
    shop_wake_fd = pfd[0];
    wake_write_fd = pfd[1];

    char err[512];
    int schema = 0;
    if (store_init(shop_db_path, &schema, err, sizeof err) < 0) {
        fprintf(stderr, "shop: cannot open the database %s\n", err);
        return 1;
    }
    int lfd = listen_on(port);
    if (lfd < 0) {
        fprintf(stderr, "shop: cannot listen on 127.0.0.1:%d: %s\n", port, strerror(errno));
        return 1;
    }

    pthread_t sig_thread;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, THREAD_STACK);
    if (pthread_create(&sig_thread, &attr, signal_main, &set) != 0) {
        fputs("shop: cannot start the signal thread\n", stderr);
        return 1;
    }
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);

    shop_log("shop %s (pid %d): listening on 127.0.0.1:%d, database %s (schema %d%s)", SHOP_VERSION, (int)getpid(),
             port, shop_db_path, schema, schema > shop_features.schema ? ", newer than this release: compatible" : "");
    accept_loop(lfd, &attr);
    double t0 = shop_now_ms();
    int left = drain();
    pthread_join(sig_thread, NULL);
    pthread_attr_destroy(&attr);
    if (left > 0)
        shop_log("shop %s: drain timeout after %d ms, %d connection(s) cut", SHOP_VERSION, DRAIN_MS, left);
    else
        shop_log("shop %s: stopped after %.0f ms, exit 0", SHOP_VERSION, shop_now_ms() - t0);
    return 0;
}
