/* config-t.h - typed configuration, as read from cutover.yml.
 *
 * A struct config is built whole by config_load(), validated, and only then
 * handed to the daemon, which swaps it in atomically (on SIGHUP too).  It
 * owns all its strings and arrays; config_free() releases everything.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

enum config_log_format { CONFIG_LOG_LOGFMT = 0, CONFIG_LOG_JSON };

struct config_addr {
	char *text;                   /* as written, e.g. "127.0.0.1:8080" */
	struct sockaddr_storage sa;
	socklen_t salen;
};

struct config_target {
	struct config_addr addr;
	uint32_t weight;              /* 1..1000, default 1 */
};

struct config_route {
	char *host;                   /* NULL: any host; "*.example.com": wildcard; else exact (lower-case) */
	char *path_prefix;            /* always starts with '/'; default "/" */
	size_t service;               /* index into config.services */
	int line;                     /* where it was declared (for messages) */
};

/* A variable of a service's environment. */
struct config_env {
	char *name;                   /* [A-Za-z_][A-Za-z0-9_]* */
	char *value;                  /* ${PORT} ${VERSION} ${SERVICE} ${RELEASE_DIR} substituted at launch
				       * (the variables: of the configuration already are) */
};

/* A variable of the configuration (variables:), substituted when the file
 * is loaded in a service's run, env values, deploy.smoke and health.host. */
struct config_variable {
	char *name;                   /* [A-Za-z_][A-Za-z0-9_]*, not one of cutover's own (PORT, ...) */
	char *value;                  /* as written; never contains "${" */
};

/* HTTP health check of one instance (services.NAME.health). */
struct config_health {
	char *path;                   /* default "/health"; must start with '/' */
	char *host;                   /* Host header; NULL: the service name */
	uint64_t interval_ms;         /* default 1s */
	uint64_t timeout_ms;          /* default: half the interval, at most 2s (500ms with the default interval); < interval */
	uint32_t healthy_threshold;   /* default 2 consecutive successes (1..100) */
	uint32_t unhealthy_threshold; /* default 3 consecutive failures (1..100) */
	uint64_t start_grace_ms;      /* default 30s: failures before the first success don't count */
};

/* Resource limits of an instance (services.NAME.limits). 0 = not set. */
struct config_proc_limits {
	uint64_t nofile;              /* RLIMIT_NOFILE */
	uint64_t nproc;               /* RLIMIT_NPROC */
	uint64_t core;                /* RLIMIT_CORE, bytes; only when core_set */
	bool core_set;                /* core: was given (core: 0 disables core dumps, so 0 cannot mean "not set") */
	uint64_t memory_max;          /* cgroup v2 memory.max, bytes */
	uint32_t cpu_max_percent;     /* cgroup v2 cpu.max, percent of one CPU (1..100000) */
};

/* How a new version replaces the running one. */
enum config_strategy {
	CONFIG_STRATEGY_BLUE_GREEN = 0, /* start the new version beside the old one, then switch */
	CONFIG_STRATEGY_RECREATE,       /* stop the old version, then start the new one (a gap) */
	CONFIG_STRATEGY_CANARY,         /* the new version beside the old one, its share of traffic in steps */
	CONFIG_STRATEGY_ROLLING,        /* the instances replaced a few at a time (instances: N) */
};

/* One step of a canary: the new version's share of new requests (1..100;
 * the last step is 100) held for hold_ms while it is analysed. */
#define CONFIG_CANARY_STEPS_MAX 7
struct config_canary_step {
	uint32_t weight;              /* percent */
	uint64_t hold_ms;             /* 0: go on at once (the last step: deploy.watch applies) */
};

/* max_surge / max_unavailable: a number of instances or a percentage of
 * them (surge rounds up, unavailable down, as in Kubernetes). */
struct config_amount {
	uint32_t value;               /* instances, or percent when percent */
	bool percent;
};

/* What a step whose analysis stayed inconclusive (too few requests) up
 * to its longest extension does. */
enum config_inconclusive {
	CONFIG_INCONCLUSIVE_PAUSE = 0, /* the deploy pauses at that step: `cutover resume`, `promote` or `abort` */
	CONFIG_INCONCLUSIVE_ABORT,     /* the deploy is aborted (traffic back on the stable version) */
};

/* services.NAME.deploy, over the top-level deploy: defaults */
struct config_deploy {
	enum config_strategy strategy;  /* "blue-green" (default), "recreate", "canary" or "rolling" */
	uint64_t timeout_ms;          /* default 60s: green must be healthy within */
	uint64_t drain_ms;            /* default 30s: in-flight requests on blue may finish */
	uint64_t rollback_window_ms;  /* default 5m: blue stays warm for an instant rollback */
	uint64_t watch_ms;            /* default 60s: after the switch, roll back automatically if... */
	uint32_t max_error_rate_permille; /* default 50 (5 %): 5xx + upstream failures / requests */
	uint64_t max_p99_ms;          /* default 0 = off */
	uint32_t min_requests;        /* default 20: below this many in a step, its verdict is inconclusive */
	char *smoke;                  /* optional shell command run against green (${URL} = http://127.0.0.1:PORT) */
	/* canary */
	struct config_canary_step steps[CONFIG_CANARY_STEPS_MAX];
	size_t nsteps;                /* default 10% 1m, 50% 1m, 100% */
	/* rolling */
	struct config_amount max_surge;       /* default 25% */
	struct config_amount max_unavailable; /* default 0 */
	uint64_t min_ready_ms;        /* default 5s: healthy this long before it takes traffic */
	uint64_t batch_hold_ms;       /* default 30s: each batch analysed this long before the next */
	/* analysis (docs/internals/analysis.md) */
	uint32_t confidence_bp;       /* default 9900 (99 %): of the statistical tests, in basis points */
	uint32_t max_error_rate_increase_permille; /* default 0: allowed margin above the stable version's error rate */
	uint64_t max_p50_ms;          /* default 0 = off */
	uint32_t max_p50_ratio_percent; /* default 200 (2x the stable version's p50); 0 = off */
	uint32_t max_p99_ratio_percent; /* default 200; 0 = off */
	uint64_t latency_margin_ms;   /* default 10ms: a latency within this of the stable one never fails a ratio */
	uint64_t max_extension_ms;    /* default 5m: a step without enough requests holds this much longer at most */
	enum config_inconclusive on_inconclusive; /* default pause */
	bool retry_on_stable;         /* default on: a safe request failed by the canary is retried on stable */
};

/* A route class (services.NAME.route_classes): requests judged apart by
 * the analysis, e.g. "POST /api/checkout".  Matched as routes are: the
 * longest path prefix at a segment boundary, and the method if given. */
#define CONFIG_ROUTE_CLASSES_MAX 8
struct config_route_class {
	char *name;                   /* as written, e.g. "POST /api/checkout" */
	char *method;                 /* upper case; NULL: any method */
	char *path_prefix;            /* starts with '/' */
};

/* How an instance receives a secret (services.NAME.secrets). */
enum config_secret_as {
	CONFIG_SECRET_ENV = 0,        /* an environment variable */
	CONFIG_SECRET_FILE,           /* a file (mode 0400) in the instance's private directory,
				       * $CUTOVER_SECRETS_DIR, removed when the instance stops */
};

/* services.NAME.alerts: the limits the shipped Prometheus alert rules
 * (contrib/prometheus) compare a service's traffic with, exposed in
 * /metrics as cutover_alert_max_error_rate and
 * cutover_alert_max_p99_seconds.  Any service, managed or not. */
#define CONFIG_ALERT_RATE_OFF UINT32_MAX
struct config_alerts {
	uint32_t max_error_rate_permille; /* default 50 (5 %): 5xx / requests; CONFIG_ALERT_RATE_OFF: off */
	uint64_t max_p99_ms;          /* default 1000 (1 s); 0: off */
};

/* A secret a service needs: "NAME" (an environment variable NAME), or
 * {name: NAME, env: VAR} or {name: NAME, file: FILE}. */
#define CONFIG_SERVICE_SECRETS_MAX 64
struct config_service_secret {
	char *name;                   /* in the secrets file: [A-Za-z_][A-Za-z0-9_]{0,63} */
	enum config_secret_as as;
	char *target;                 /* the variable's name, or the file's name ([A-Za-z0-9._-], not "." or "..") */
	int line;                     /* where it was written (for messages) */
};

struct config_service {
	char *name;                   /* [a-z0-9][a-z0-9_-]*, unique */
	struct config_target *targets;
	size_t ntargets;              /* >= 1 unless `run` is set (cutover then runs the targets) */
	/* managed services (issue 3): cutover runs each version as a process */
	char *build;                  /* optional shell command, run in the release dir */
	char *run;                    /* shell command; ${PORT} ${VERSION} ${SERVICE} ${RELEASE_DIR} */
	char *workdir;                /* default: the release dir */
	struct config_env *env;
	size_t nenv;
	struct config_health health;
	int stop_signal;              /* default SIGTERM; names: TERM, INT, QUIT, HUP, USR1, USR2 (with or without SIG) */
	uint64_t stop_grace_ms;       /* default 10s, then SIGKILL */
	uint32_t instances;           /* supervised instances per version, 1..64, default 1 */
	struct config_proc_limits limits;
	struct config_deploy deploy;
	struct config_route_class *route_classes; /* judged apart by the analysis, at most CONFIG_ROUTE_CLASSES_MAX */
	size_t nroute_classes;
	struct config_service_secret *secrets; /* what its instances receive, at most CONFIG_SERVICE_SECRETS_MAX */
	size_t nsecrets;
	/* releases (issue 12) */
	char **depends_on;            /* services it needs deployed first in a release (names of services) */
	size_t ndepends_on;
	char *changelog;              /* its changelog, relative to a release's directory; default CHANGELOG.md */
	struct config_alerts alerts;  /* alerts: (any service) */
	int line;                     /* where it was declared (for messages) */
};

struct config_timeouts {              /* all in milliseconds */
	uint64_t client_header;       /* default 10s: whole request head must arrive -> 408 */
	uint64_t client_idle;         /* default 60s: keep-alive idle between requests -> close */
	uint64_t client_body;         /* default 60s: idle while reading a request body -> 408 */
	uint64_t upstream_connect;    /* default 5s -> retry elsewhere, then 504 */
	uint64_t upstream_header;     /* default 60s: response head after request sent -> 504 */
	uint64_t upstream_body;       /* default 60s: idle while streaming response body -> close */
	uint64_t upstream_idle;       /* default 30s: pooled idle upstream connection lifetime */
	uint64_t drain;               /* default 30s: SIGTERM grace for in-flight requests */
	uint64_t upgrade;             /* default 60s: `cutover upgrade`: the new binary must be ready by then */
};

/* What requests for a managed service meet while the daemon starts a
 * version whose instances did not survive a restart. */
enum config_unready {
	CONFIG_UNREADY_QUEUE,         /* not accepted yet: they wait in the accept queue (up to max_wait) */
	CONFIG_UNREADY_RETRY_AFTER,   /* accepted: 503 with Retry-After until an instance is healthy */
};

struct config_startup {
	enum config_unready unready;  /* default queue */
	uint64_t max_wait_ms;         /* default 30s: queue no longer than this, then accept (and 503) */
	uint64_t retry_after_ms;      /* default 5s: the Retry-After of those 503s (whole seconds, >= 1) */
};

struct config_limits {
	uint32_t max_header_bytes;    /* default 16k (431 beyond) */
	uint32_t max_uri_bytes;       /* default 8k (414 beyond) */
	uint32_t buffer_bytes;        /* default 16k: per-direction streaming buffer */
	uint32_t max_connections;     /* default 20000 client connections */
	uint32_t upstream_idle_per_target; /* default 64 pooled idle connections per target */
	uint32_t max_retries;         /* default 2: other targets tried after a refused connect */
};

/* The canary cohort of a shopper and the overrides for QA (cohorts:). */
struct config_cohorts {
	char *cookie;                 /* default "cutover_cohort": holds 0..99 */
	uint64_t max_age_ms;          /* default 30d: the cookie's Max-Age */
	char *override_cookie;        /* default "cutover_version": forces a version */
	char *override_header;        /* default "X-Cutover-Version": forces a version */
};

/* The environment's encrypted secrets (secrets:).  Paths are absolute
 * once loaded. */
struct config_secrets {
	char *file;                   /* the age file; default DIR/secrets.age, in an environment
				       * DIR/secrets.ENV.age (DIR: cutover.yml's directory) */
	char *recipients;             /* who it is encrypted to, `age -R` format; default: file with
				       * .age replaced by .recipients */
	char *identity;               /* this server's key (AGE-SECRET-KEY-1...), mode 0600;
				       * default STATE_DIR/identity.key */
	char *runtime_dir;            /* where the instances' secret files go (tmpfs); default
				       * /run/cutover as root, else $XDG_RUNTIME_DIR/cutover, else
				       * /dev/shm/cutover-UID */
};

/* How multi-service releases run (release:). */
struct config_release {
	uint32_t concurrency;         /* default 4: services of one group deployed at once (1..64) */
	char *notes_template;         /* Markdown release notes template (absolute path); NULL: the built-in one */
	uint64_t gate_timeout_ms;     /* default 10m: a gate or command step without its own timeout */
};

/* Who must approve a deploy or a promotion before it starts (approval:;
 * an environment's overlay usually sets it: required only in prod). */
struct config_approval {
	bool required;                /* default false; `approval: required` is {required: true} */
	uint64_t timeout_ms;          /* default 1h: a request not decided by then ends `expired` */
	bool distinct;                /* default false: the approver must be another user than the requester */
};

/* Where an environment takes its releases from (promotion:): `cutover
 * promote SERVICE --from FROM --to THIS` checks a signed proof of what ran
 * in FROM (docs/internals/promotion.md). */
#define CONFIG_TRUST_MAX 16
#define CONFIG_TRUST_KEY_MAX 64      /* "ed25519:" and the 32-byte key in base64 (44 characters) */
struct config_promotion {
	char *from;                   /* the only environment promoted from; NULL: any */
	uint64_t soak_ms;             /* default 0: how long a version must have run there, healthy,
				       * after its analysis */
	char trust[CONFIG_TRUST_MAX][CONFIG_TRUST_KEY_MAX + 1]; /* the proof keys trusted ("ed25519:...") */
	size_t ntrust;
};

/* The pipeline (pipeline:, docs/pipeline.md): stages that `cutover
 * pipeline run` runs one after the other, stopping at the first failure.
 * A stage either runs a shell command (run:) or one of cutover's own verbs
 * (deploy:, promote:, release:), which the pipeline runs as a child
 * process of the same binary. */
#define CONFIG_PIPELINE_STAGES_MAX 64  /* the exit code of a failed stage is 10 + its number */
enum config_stage_kind {
	CONFIG_STAGE_RUN = 0,         /* run: a shell command */
	CONFIG_STAGE_DEPLOY,          /* deploy: {service, version, env, wait}: cutover deploy */
	CONFIG_STAGE_PROMOTE,         /* promote: {service, from, to, wait}: cutover promote --from --to */
	CONFIG_STAGE_RELEASE,         /* release: FILE or {file, env, wait}: cutover release run */
};
enum config_stage_when {
	CONFIG_STAGE_ON_SUCCESS = 0,  /* only while every stage before it succeeded (default) */
	CONFIG_STAGE_ALWAYS,          /* also after a failure (a cleanup, a report) */
};
struct config_stage {
	char *name;                   /* [a-z0-9][a-z0-9_-]{0,62}, unique in the pipeline */
	enum config_stage_kind kind;
	char *run;                    /* RUN: the command (variables: substituted; ${ENV} when it runs) */
	bool uses_env;                /* RUN: the command or an env value holds ${ENV} */
	char *service;                /* DEPLOY, PROMOTE */
	char *version;                /* DEPLOY */
	char *file;                   /* RELEASE: the release file (absolute once loaded from disk) */
	char *from;                   /* PROMOTE: the environment promoted from */
	char *target_env;             /* DEPLOY, RELEASE: env:; PROMOTE: to:.  NULL: the pipeline's --env */
	bool wait;                    /* DEPLOY, PROMOTE, RELEASE: follow it through an approval (else the
				       * pipeline stops there, exit 4) */
	uint64_t timeout_ms;          /* default 30m: then the stage's processes are killed */
	enum config_stage_when when;
	struct config_env *env;       /* variables added to the stage's environment */
	size_t nenv;
	int line;                     /* where it was declared (for messages) */
};
struct config_pipeline {
	struct config_stage *stages;  /* in the order written */
	size_t nstages;               /* 0: no pipeline: section */
};

/* Webhooks the daemon sends on release and deploy events (notifications:;
 * docs/config.md, docs/internals/notify.md). */
#define CONFIG_WEBHOOKS_MAX 16
#define CONFIG_WEBHOOK_URL_MAX 2048
#define CONFIG_WEBHOOK_NAME_MAX 32
enum config_notify_event {
	CONFIG_NOTIFY_STARTED = 0,    /* a deploy or a release started */
	CONFIG_NOTIFY_STEP,           /* traffic switched (a canary step, a batch), a release's step */
	CONFIG_NOTIFY_SUCCEEDED,
	CONFIG_NOTIFY_ROLLED_BACK,
	CONFIG_NOTIFY_FAILED,         /* failed, rejected or expired */
	CONFIG_NOTIFY_APPROVAL_NEEDED,
	CONFIG_NOTIFY_NEVENTS,
};
enum config_webhook_format {
	CONFIG_WEBHOOK_SLACK = 0,     /* {"text", "blocks"}: a Slack incoming webhook's payload */
	CONFIG_WEBHOOK_JSON,          /* the event as the event stream has it, in an envelope */
};
struct config_webhook {
	char *name;                   /* its label in metrics and logs; default its index ("0", "1", ...) */
	char *url;                    /* http:// or https://; NULL when url_secret names it */
	char *url_secret;             /* the secret (secrets file) holding the URL; NULL when url is given */
	uint32_t events;              /* 1u << enum config_notify_event; default all */
	enum config_webhook_format format; /* default slack */
	uint64_t timeout_ms;          /* default 5s: one attempt, connect included */
	uint32_t retries;             /* default 5: attempts after the first one */
	uint64_t backoff_ms;          /* default 1s: delay before the first retry, doubled for each next */
	uint32_t queue;               /* default 100: notifications waiting at most; the oldest is dropped */
	int line;                     /* where it was declared (for messages) */
};
struct config_notifications {
	struct config_webhook *webhooks;
	size_t nwebhooks;
};

struct config_log {
	char *access;                 /* path, "-" for stdout, NULL for off */
	enum config_log_format access_format; /* log.format */
	char *error;                  /* path, NULL/"-" for stderr */
	enum config_log_format error_format;  /* log.error_format (the command line's --json wins) */
	int level;                    /* enum log_level */
};

struct config {
	char *path;                   /* file it was read from (the base, cutover.yml) */
	char *env;                    /* the environment whose overlay was merged (cutover.ENV.yml), or NULL */
	char *overlay;                /* that overlay's path, or NULL */
	struct config_addr *listen;   /* proxy listeners, >= 1 */
	size_t nlisten;
	struct config_addr admin;     /* admin listener; text NULL if none.  Not on loopback: it needs the
				       * secret admin_token (config_admin_token) */
	char admin_file[256];         /* where admin: is written, for messages (file, line, column) */
	int admin_line, admin_column;
	struct config_service *services;
	size_t nservices;
	struct config_route *routes;  /* in declaration order */
	size_t nroutes;
	struct config_variable *variables; /* variables:, in the order written (already substituted) */
	size_t nvariables;
	struct config_timeouts timeouts;
	struct config_limits limits;
	struct config_log log;
	struct config_startup startup;
	struct config_cohorts cohorts;
	struct config_secrets secrets;
	struct config_approval approval;
	struct config_release release; /* release: */
	struct config_promotion promotion;
	struct config_pipeline pipeline;   /* pipeline: (src/config/pipeline.c) */
	struct config_notifications notifications; /* notifications: */
	char *state_dir;              /* default "/var/lib/cutover"; releases, SQLite state, instance logs */
	char *admin_socket;           /* default STATE_DIR/admin.sock (mode 0600) */
};

/* One file of a configuration held in memory: the base file or an overlay
 * (config_load_sources). */
struct config_source {
	const char *name;             /* file name, for messages and relative paths */
	const char *text;
	size_t len;
};

/* Where and why loading failed.  message is a full sentence for a human:
 * "cutover.yml:12:5: services.shop.targets[0].weight: must be 1..1000, got \"0\"". */
struct config_error {
	char file[256];               /* the file the offending value was written in */
	int line;                     /* 1-based, 0 if not tied to a place */
	int column;                   /* 1-based */
	char field[128];              /* dotted path, e.g. services.shop.targets[0].weight */
	char message[512];            /* complete message as above */
};
