/* app.js - the status page's data and its life: what it fetches from the
 * daemon that served it (same origin only, read-only GETs), when, and what
 * it shows when the daemon does not answer.
 *
 *   /v1/status       services, instances, the deploy in flight, releases:
 *                    on every event of /v1/events (debounced), and every 5 s
 *   /v1/history      the per-version series of the charts: every 5 s, only
 *                    the points newer than the last one (?since=)
 *   /v1/deployments  the deploy history: at start and on deployment events
 *   /v1/uptime       availability 24 h / 7 d: at start, after a deploy
 *                    ends, and every 30 s
 *   /v1/events       Server-Sent Events: the page never reloads itself
 *
 * The views are in service.js (a service's card and its charts) and
 * history.js (the deploy history, releases, events); the charts in
 * chart.js; formats and DOM building in format.js.
 */
(function () {
	"use strict";

	const C = window.Cutover;
	const { h, when, whenText, duration } = C.fmt;
	const S = C.service, H = C.history;
	const POLL_MS = 5000, UPTIME_MS = 30000, DEBOUNCE_MS = 250, WINDOW_MS = 15 * 60 * 1000;
	const FEED_MAX = 30;

	const data = {
		status: null,
		history: { interval_s: 5, now: 0, series: new Map(), split: [] },
		since: 0,                   /* t of the newest history point we hold */
		deployments: [],
		uptime: new Map(),
		errors: {},                 /* route -> what went wrong the last time */
		feed: [],
		colors: new Map(),
		open: new Set(),            /* deploy ids whose phases are unfolded */
	};
	const link = {
		lastOk: 0,                  /* when the daemon last answered (client clock) */
		failingSince: 0,            /* first failure of the current outage, 0: none */
		error: "",
		auth: false,
		events: "connecting",       /* connecting | live | reconnecting */
		pid: null,
	};
	C.data = data;
	C.link = link;

	/* ------------------------------------------------------------ fetching */

	class HttpError extends Error {
		constructor(status, text) {
			super(`${status} ${text}`);
			this.status = status;
		}
	}

	async function get(path) {
		let r;
		try {
			r = await fetch(path, { cache: "no-store", credentials: "same-origin",
				headers: { Accept: "application/json" } });
		} catch (e) {
			throw new HttpError(0, "no answer");
		}
		if (!r.ok)
			throw new HttpError(r.status, r.statusText);
		return r.json();
	}

	/* /v1/status and /v1/history are the heartbeat: polled every 5 s,
	 * they decide whether the daemon is reachable.  The other routes
	 * only mark their own section when they fail. */
	const HEARTBEAT = ["/v1/status", "/v1/history"];

	function answered(route) {
		delete data.errors[route];
		if (!HEARTBEAT.includes(route))
			return;
		link.lastOk = Date.now();
		link.failingSince = 0;
		link.auth = false;
		link.error = "";
	}

	function failed(e, route) {
		const text = e.status ? `HTTP ${e.message}` : "no answer";
		if (e.status === 401 || e.status === 403)
			link.auth = true;
		if (!HEARTBEAT.includes(route)) {
			data.errors[route] = text;
			return;
		}
		if (!link.failingSince)
			link.failingSince = Date.now();
		link.error = `${route}: ${text}`;
	}

	async function load(path, apply) {
		const route = path.split("?")[0];
		try {
			const j = await get(path);
			answered(route);
			apply(j);
			return true;
		} catch (e) {
			if (!(e instanceof HttpError))
				throw e;
			failed(e, route);
			if (route === "/v1/deployments")
				renderHistory();
			if (route === "/v1/uptime")
				renderServices();
			return false;
		} finally {
			connection();
		}
	}

	function refreshStatus() {
		return load("/v1/status", (j) => {
			data.status = j;
			if (link.pid !== null && j.pid !== link.pid)
				restarted();
			link.pid = j.pid;
			renderServices();
			renderHeader();
		});
	}

	/* A new daemon (upgrade, restart): its history starts afresh. */
	function restarted() {
		data.since = 0;
		data.history.series = new Map();
	}

	function refreshHistory() {
		const q = data.since ? `?since=${data.since}` : "";
		return load(`/v1/history${q}`, (j) => {
			const hist = data.history;
			if (!data.since)
				hist.series = new Map();
			hist.interval_s = j.interval_s || 5;
			hist.now = j.now || Date.now();
			C.skew = hist.now - Date.now();
			hist.split = j.split || [];
			for (const s of j.series || []) {
				/* an unmanaged service has one series, of no version */
				const k = `${s.service}\u0000${s.version ?? ""}`;
				const pts = hist.series.get(k) || [];
				for (const p of s.points || [])
					if (!pts.length || p.t > pts[pts.length - 1].t)
						pts.push(p);
				hist.series.set(k, pts);
			}
			const oldest = hist.now - WINDOW_MS;
			for (const [k, pts] of hist.series) {
				const keep = pts.filter((p) => p.t >= oldest);
				if (keep.length)
					hist.series.set(k, keep);
				else
					hist.series.delete(k);
				for (const p of keep)
					data.since = Math.max(data.since, p.t);
			}
			renderServices();
		});
	}

	function refreshDeployments() {
		return load("/v1/deployments?limit=20", (j) => {
			data.deployments = j.deployments || [];
			renderHistory();
			renderCharts();
		});
	}

	function refreshUptime() {
		return load("/v1/uptime", (j) => {
			data.uptime = new Map((j.services || []).map((s) => [s.service, s]));
			renderServices();
		});
	}

	/* Debounced refreshes: a burst of events costs one fetch of each. */
	const pending = new Set();
	let timer = 0;

	function schedule(...what) {
		what.forEach((w) => pending.add(w));
		if (!timer)
			timer = setTimeout(() => {
				timer = 0;
				const w = [...pending];
				pending.clear();
				if (w.includes("status"))
					refreshStatus();
				if (w.includes("deployments"))
					refreshDeployments();
				if (w.includes("uptime"))
					refreshUptime();
				if (w.includes("history"))
					refreshHistory();
			}, DEBOUNCE_MS);
	}

	/* ------------------------------------------------------------ events */

	let source = null;

	function listen() {
		if (source)
			source.close();
		link.events = "connecting";
		source = new EventSource("/v1/events", { withCredentials: true });
		source.onopen = () => {
			link.events = "live";
			connection();
		};
		source.onerror = () => {
			link.events = "reconnecting";
			connection();
			/* CLOSED: the browser gave up (an error status): start again later */
			if (source.readyState === EventSource.CLOSED)
				setTimeout(listen, POLL_MS);
		};
		const on = (kind, refresh) => source.addEventListener(kind, (ev) => {
			let d = {};
			try {
				d = JSON.parse(ev.data);
			} catch (e) { /* keep the empty object */ }
			link.events = "live";
			note(kind, d);
			schedule(...refresh(d));
		});
		on("hello", () => ["status", "deployments", "uptime", "history"]);
		on("deployment", (d) => ["status", "deployments", ...(d.result ? ["uptime", "history"] : [])]);
		on("instance", () => ["status"]);
		on("release", () => ["status", "deployments"]);
		on("maintenance", () => ["status"]);
	}

	function note(kind, d) {
		data.feed.unshift({ kind, data: d, at: d.at_ms || Date.now() + (C.skew || 0) });
		data.feed.length = Math.min(data.feed.length, FEED_MAX);
		renderFeed();
	}

	/* ------------------------------------------------------------ views */

	const $ = (id) => document.getElementById(id);

	function renderHeader() {
		const st = data.status;
		if (!st)
			return;
		$("daemon").replaceChildren(...[
			h("span", {}, "cutover ", h("strong", {}, st.version)),
			st.env ? h("span", { class: "env" }, `environment ${st.env}`) : null,
			h("span", {}, `pid ${st.pid}`),
			h("span", {}, `up ${duration(st.uptime_s * 1000)}`),
			h("span", {}, C.fmt.plural(st.client_connections, "client connection")),
			st.draining ? C.fmt.badge("stopping", "draining: shutting down") : null].filter(Boolean));
		document.title = `cutover status · ${location.host}`;
	}

	function renderServices() {
		if (!data.status)
			return;
		const box = $("services");
		const names = (data.status.services || []).map((s) => s.name);
		for (const m of data.status.managed || [])
			if (!names.includes(m.name))
				names.push(m.name);
		box.replaceChildren(...(names.length ? names.map((n) => S.card(data, n))
			: [h("p", { class: "card muted" }, "This daemon serves no service.")]));
		renderCharts();
		const rel = (data.status.releases || []).length;
		$("releases").hidden = !rel;
		if (rel)
			$("releases-body").replaceChildren(H.releases(data));
		$("main").setAttribute("aria-busy", "false");
	}

	function renderCharts() {
		for (const box of document.querySelectorAll(".charts[data-charts]"))
			S.charts(data, box, box.dataset.charts);
	}

	function renderHistory() {
		$("history-body").replaceChildren(H.deployments(data, data.open));
	}

	function renderFeed() {
		$("feed-body").replaceChildren(H.feed(data));
	}

	/* The connection line and, when the daemon does not answer, the banner. */
	function connection() {
		const c = $("conn"), banner = $("banner");
		let state, text;
		if (link.auth) {
			state = "bad";
			text = "not authorised";
		} else if (link.failingSince) {
			state = "bad";
			text = "daemon unreachable";
		} else if (link.events === "live") {
			state = "ok";
			text = "live";
		} else if (link.lastOk) {
			state = "warn";
			text = link.events === "connecting" ? "connecting to events…"
				: "events reconnecting; polling every 5 s";
		} else {
			state = "idle";
			text = "connecting…";
		}
		c.dataset.state = state;
		const sym = { ok: "●", warn: "▲", bad: "✕", idle: "◌" }[state];
		const updated = link.lastOk ? h("span", { class: "muted" }, " · updated ",
			h("span", { data: { lastOk: "" } }, C.fmt.age(link.lastOk, Date.now()))) : null;
		c.replaceChildren(h("span", { class: "sym", "aria-hidden": "true" }, sym), " ", text, updated);
		document.body.classList.toggle("stale", !!link.failingSince || link.auth);
		if (link.auth) {
			banner.hidden = false;
			banner.replaceChildren(h("strong", {}, "Not authorised. "),
				"This admin address needs the admin token: open ",
				h("code", {}, `${location.origin}/?token=TOKEN`),
				" once (the token is the secret named admin_token); the page then keeps a cookie.");
		} else if (link.failingSince) {
			banner.hidden = false;
			const from = link.lastOk ? ["What you see is from ", C.fmt.clock(link.lastOk), ", ",
				h("span", { data: { lastOk: "" } }, C.fmt.age(link.lastOk, Date.now())), ". "]
				: "Nothing was received yet. ";
			banner.replaceChildren(h("span", {},
				h("strong", {}, `The daemon at ${location.host} does not answer`),
				` since ${C.fmt.clock(link.failingSince)} (${link.error}). `, from,
				"The page keeps trying every 5 s."));
		} else {
			banner.hidden = true;
		}
	}

	/* Every second: the ages of times, countdowns, the connection line. */
	function tick() {
		document.querySelectorAll("time[data-at]").forEach((t) => {
			t.textContent = whenText(Number(t.dataset.at), t.dataset.style);
		});
		document.querySelectorAll("[data-until]").forEach((e) => {
			const left = Number(e.dataset.until) - Date.now();
			e.textContent = ` · next decision ${left <= 500 ? "now" : `in ${duration(left)}`}`;
		});
		document.querySelectorAll("[data-last-ok]").forEach((e) => {
			e.textContent = C.fmt.age(link.lastOk, Date.now());
		});
	}

	function start() {
		$("tz").textContent = Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";
		connection();
		renderFeed();
		refreshStatus().then(() => {
			refreshHistory();
			refreshDeployments();
			refreshUptime();
		});
		listen();
		setInterval(() => {
			refreshHistory();
			refreshStatus();
		}, POLL_MS);
		setInterval(() => {
			refreshUptime();
			if (data.errors["/v1/deployments"])
				refreshDeployments();
		}, UPTIME_MS);
		setInterval(tick, 1000);
		let resize = 0;
		window.addEventListener("resize", () => {
			clearTimeout(resize);
			resize = setTimeout(renderCharts, 150);
		});
	}

	if (document.readyState === "loading")
		document.addEventListener("DOMContentLoaded", start);
	else
		start();
})();
