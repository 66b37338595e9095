/* service.js - a service's card on the status page: a plain function from
 * the data the daemon gave (app.js keeps it in one `data` object) to DOM
 * nodes, and the charts that fill the card's .charts box.
 *
 *   Cutover.service.card(data, name)        health, maintenance, uptime,
 *       the versions with their instances and the split (set and
 *       measured), the deploy in flight with its steps and checks
 *   Cutover.service.charts(data, box, name)  the four charts of the card
 *
 * Stable hooks for tests and scripts: data-service, data-version,
 * data-weight (the share of new requests set, in percent), data-measured,
 * data-role, data-chart + data-points, data-deploy-id, data-step,
 * data-new-weight, data-check, data-state.  Nothing here fetches.
 */
(function () {
	"use strict";

	const { h, count, rate, ratio, percent, ms, duration, when, badge, stateOf, plural } = window.Cutover.fmt;
	const WINDOW_MS = 15 * 60 * 1000;
	const DASHES = ["none", "7 4", "2 3", "10 3 2 3", "4 4", "1 2"];
	const SEP = "\u0000";   /* in history keys: service SEP version */

	/* The colour slot of a version: stable for the page's life, in the
	 * order the versions were first seen for the service. */
	function slot(data, service, version) {
		let m = data.colors.get(service);
		if (!m)
			data.colors.set(service, (m = new Map()));
		if (!m.has(version))
			m.set(version, m.size % DASHES.length);
		return m.get(version);
	}

	function swatch(data, service, version) {
		return h("span", { class: `swatch v${slot(data, service, version)}`, "aria-hidden": "true" });
	}

	const known = (v) => v !== null && v !== undefined;

	/* The newest point of a series if it is recent (3 intervals), else null. */
	function latest(points, now, interval) {
		const p = points && points.length ? points[points.length - 1] : null;
		return p && now - p.t <= 3 * interval ? p : null;
	}

	function table(cls, caption, heads, numFrom, rows) {
		const th = (c, i) => h("th", { scope: "col", class: numFrom >= 0 && i >= numFrom ? "num" : "" }, c);
		return h("div", { class: "table-wrap" }, h("table", { class: cls },
			caption ? h("caption", {}, caption) : null,
			h("thead", {}, h("tr", {}, heads.map(th))),
			h("tbody", {}, rows)));
	}

	/* ------------------------------------------------------------ model */

	const ROLE_ORDER = { live: 0, green: 1, warm: 2 };

	/* The versions of a service as rows: proxy weights joined with the
	 * deployer's instances; live first, then the new one, then warm. */
	function versionRows(proxy, managed) {
		const rows = new Map();
		const row = (v) => {
			if (!rows.has(v))
				rows.set(v, { version: v, set: null, instances: [], roles: new Set() });
			return rows.get(v);
		};
		for (const v of (proxy && proxy.versions) || [])
			row(v.version).set = v.share_percent;
		for (const i of (managed && managed.instances) || []) {
			const r = row(i.version);
			r.instances.push(i);
			r.roles.add(i.role);
		}
		const rank = (r) => Math.min(3, ...[...r.roles].map((x) => ROLE_ORDER[x] ?? 3));
		return [...rows.values()].sort((a, b) => rank(a) - rank(b));
	}

	function roleName(r, managed) {
		if (r.roles.has("live"))
			return "live";
		if (r.roles.has("green"))
			return managed.strategy === "canary" ? "canary" : "new";
		if (r.roles.has("warm"))
			return "warm (previous)";
		return "–";
	}

	/* [state, sentence]: healthy, degraded or down by the live instances. */
	function serviceHealth(managed, proxy) {
		if (!managed) {
			const t = (proxy && proxy.targets) || [];
			return ["unknown", `${plural(t.length, "static target")}, not supervised`];
		}
		const live = managed.instances.filter((i) => i.role === "live");
		if (!live.length)
			return managed.deploying ? ["starting", "first version starting"]
				: ["unknown", "no version deployed"];
		const ok = live.filter((i) => i.health === "healthy" && i.state === "running").length;
		const what = `${ok} of ${plural(live.length, "live instance")} healthy`;
		return [ok === live.length ? "healthy" : ok ? "degraded" : "down", what];
	}

	/* ------------------------------------------------------------ the card */

	function card(data, name) {
		const st = data.status;
		const managed = (st.managed || []).find((m) => m.name === name) || null;
		const proxy = (st.services || []).find((s) => s.name === name) || null;
		const [health, healthText] = serviceHealth(managed, proxy);
		const held = managed && "maintenance" in managed ? managed : proxy;
		const box = h("section", { class: "card service", "aria-labelledby": `svc-${name}`,
			data: { service: name, health, maintenance: held && held.maintenance ? "on" : null } });

		box.appendChild(h("div", { class: "card-head" },
			h("h2", { id: `svc-${name}` }, name),
			badge(health, health === "unknown" ? healthText : null),
			health !== "unknown" ? h("span", { class: "muted" }, healthText) : null,
			maintenance(held),
			h("span", { class: "spacer" }),
			uptime(data, name)));

		const facts = [];
		if (managed) {
			facts.push(["strategy", managed.strategy || "–"]);
			facts.push(["instances per version", count(managed.instances_per_version)]);
			facts.push(["a rollback goes to", managed.rollback_to || "nothing (no earlier version)"]);
		}
		if (proxy && proxy.routes)
			facts.push(["routes", proxy.routes.map((r) => `${r.host || "*"}${r.path || "/"}`).join(", ")]);
		box.appendChild(h("dl", { class: "facts" },
			facts.map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, v)))));

		if (managed) {
			const rows = versionRows(proxy, managed);
			box.append(versionsTable(data, name, rows, managed), splitBars(data, name, rows));
			if (managed.awaiting_approval && managed.awaiting_approval.length)
				box.appendChild(awaiting(managed));
			if (managed.deploying)
				box.appendChild(deploying(data, managed));
		} else {
			box.appendChild(targetsTable(data, name, proxy));
		}
		box.appendChild(h("div", { class: "charts", data: { charts: name } }));
		return box;
	}

	/* The service's maintenance (in its managed entry, or in its proxy
	 * entry for static targets); nothing from a daemon that has none. */
	function maintenance(entry) {
		if (!entry || !("maintenance" in entry))
			return null;
		const m = entry.maintenance;
		if (!m)
			return h("span", { class: "muted", data: { maintenance: "off" } }, "maintenance off");
		const b = badge("maintenance", "MAINTENANCE: answering 503");
		b.dataset.maintenance = "on";
		return h("span", { class: "maint" }, b, " since ", when(m.since), m.by ? `, by ${m.by}` : "",
			`; Retry-After ${count(m.retry_after)} s`, m.page ? ", its own page" : "");
	}

	function uptime(data, name) {
		const u = data.uptime && data.uptime.get(name);
		const err = data.errors["/v1/uptime"];
		if (err)
			return h("span", { class: "uptime muted", title: `/v1/uptime: ${err}` },
				"uptime: could not be read");
		if (!u)
			return h("span", { class: "uptime muted" }, "uptime: –");
		return h("span", { class: "uptime" }, (u.windows || []).map((w) => {
			const a = w.availability;
			const tone = !known(a) ? "idle" : a >= 0.999 ? "ok" : a >= 0.99 ? "warn" : "bad";
			const text = !known(a) ? "no requests" : `${(a * 100).toFixed(a === 1 ? 0 : 3)} %`;
			return h("span", { class: `up tone-${tone}`, data: { uptimeWindow: w.window },
				title: `${count(w.failed)} failed of ${count(w.requests)} requests` },
			h("span", { class: "up-k" }, `uptime ${w.window.replace(/(\d+)([a-z])/, "$1 $2")}`), " ",
			h("strong", {}, text));
		}));
	}

	function versionsTable(data, name, rows, managed) {
		const interval = (data.history.interval_s || 5) * 1000;
		const now = data.history.now || Date.now();
		const split = data.history.split || [];
		const body = rows.map((r) => {
			const p = latest(data.history.series.get(name + SEP + r.version), now, interval);
			const s = split.find((x) => x.service === name && x.version === r.version);
			const measured = s ? s.measured : null;
			const bad = p && p.error_rate > 0.01 ? "tone-text-bad" : "";
			const weight = known(r.set) ? Math.round(r.set) : null;
			const role = [...r.roles].join(" ") || null;
			return h("tr", { data: { version: r.version, weight, measured, role } },
			h("th", { scope: "row" }, swatch(data, name, r.version), " ", r.version),
			h("td", {}, roleName(r, managed)),
			h("td", {}, instances(r)),
			h("td", { class: "num strong" }, percent(r.set)),
			h("td", { class: "num" }, percent(measured)),
			h("td", { class: "num" }, p ? rate(p.rps) : "–"),
			h("td", { class: `num ${bad}` }, p ? ratio(p.error_rate) : "–"),
			h("td", { class: "num" }, p ? ms(p.p50_ms) : "–"),
			h("td", { class: "num" }, p ? ms(p.p99_ms) : "–"));
		});
		const caption = ["Versions ", h("span", { class: "muted" }, "(rates and latencies: the last 5 s)")];
		const heads = ["Version", "Role", "Instances", "Traffic set", "Measured (30 s)", "Rate", "Errors",
			"p50", "p99"];
		return table("versions", caption, heads, 3,
			body.length ? body : h("tr", {}, h("td", { colspan: 9, class: "muted" }, "no version runs")));
	}

	/* An unmanaged service: its configured targets and the proxy's counts
	 * (since the daemon started); its figures of the last 5 s. */
	function targetsTable(data, name, proxy) {
		const interval = (data.history.interval_s || 5) * 1000;
		const p = latest(data.history.series.get(name + SEP), data.history.now || Date.now(), interval);
		const targets = (proxy && proxy.targets) || [];
		const total = targets.reduce((a, t) => a + (t.weight || 0), 0) || 1;
		const bad = (n) => `num ${n ? "tone-text-bad" : ""}`;
		const now = p ? h("span", { class: "now" }, ` now ${rate(p.rps)}, errors ${ratio(p.error_rate)}, ` +
			`p50 ${ms(p.p50_ms)}, p99 ${ms(p.p99_ms)}`) : null;
		const caption = ["Targets ", h("span", { class: "muted" }, "(counts since the daemon started)"), now];
		const heads = ["Target", "Weight", "Requests", "5xx", "Connect failures", "Open connections"];
		const share = (t) => Math.round((1000 * t.weight) / total) / 10;
		return table("targets", caption, heads, 1,
			targets.map((t) => h("tr", { data: { target: t.address, weight: Math.round(share(t)) } },
				h("th", { scope: "row" }, t.address),
				h("td", { class: "num" }, `${t.weight} (${percent(share(t))})`),
				h("td", { class: "num" }, count(t.requests)),
				h("td", { class: bad(t.errors_5xx) }, count(t.errors_5xx)),
				h("td", { class: bad(t.connect_failures) }, count(t.connect_failures)),
				h("td", { class: "num" }, count(t.open_connections)))));
	}

	/* A version's instances as chips: port and state; the rest on hover. */
	function instances(r) {
		if (!r.instances.length)
			return h("span", { class: "muted" }, "none");
		return h("span", { class: "inst" }, r.instances.map((i) => {
			const state = i.state !== "running" ? i.state : i.health;
			const [tone, sym, words] = stateOf(state);
			const tip = `${i.address} · pid ${i.pid || "–"} · ${i.state} · health ${i.health} · ` +
				plural(i.restarts || 0, "restart") + (i.warning ? ` · ${i.warning}` : "");
			const data = { instance: i.address, state };
			return h("span", { class: `chip tone-${tone}`, title: tip, data },
				h("span", { class: "sym", "aria-hidden": "true" }, sym), ` :${i.port} ${words}`,
				i.restarts ? ` · ${i.restarts}↻` : "",
				i.warning ? h("span", { class: "warn-text" }, ` · ${i.warning}`) : null);
		}));
	}

	/* Two stacked bars: the split as set, and as measured over 30 s. */
	function splitBars(data, name, rows) {
		const bar = (label, values) => {
			const total = values.reduce((a, v) => a + (v.value || 0), 0);
			const said = (v) => `${v.version} ${percent(v.value)}`;
			const segs = values.filter((v) => v.value > 0).map((v) => {
				const seg = h("span", { class: `seg v${slot(data, name, v.version)}`, title: said(v) },
					v.value / total >= 0.12 ? said(v) : "");
				seg.style.flexGrow = String(v.value);
				return seg;
			});
			const text = values.map((v, i) => [i ? " · " : "", swatch(data, name, v.version),
				` ${v.version} `, h("strong", {}, percent(v.value))]);
			const aria = `${label}: ${values.map(said).join(", ")}`;
			return h("div", { class: "split-row", data: { split: label } },
				h("span", { class: "split-label" }, label),
				h("div", { class: "split-bar", role: "img", "aria-label": aria },
					total ? segs : h("span", { class: "seg empty" }, "no data yet")),
				h("span", { class: "split-text" }, text));
		};
		const set = rows.filter((r) => known(r.set)).map((r) => ({ version: r.version, value: r.set }));
		const measured = (data.history.split || []).filter((s) => s.service === name && known(s.measured))
			.map((s) => ({ version: s.version, value: s.measured }));
		return h("div", { class: "split" }, bar("set", set), bar("measured", measured));
	}

	function awaiting(managed) {
		return h("div", { class: "awaiting" }, h("h3", {}, badge("awaiting-approval"), " Waiting for a person"),
			h("ul", {}, managed.awaiting_approval.map((a) => h("li", { data: { deployId: a.id } },
				`#${a.id}: ${managed.name} ${a.version}, asked by ${a.requested_by}`,
				a.promoted_from ? ` (promoted from ${a.promoted_from})` : "",
				"; expires ", when(a.expires_at_ms),
				h("span", { class: "muted" }, ` · cutover approve ${a.id}`)))));
	}

	/* ------------------------------------------------------------ the deploy in flight */

	/* The phases a deploy goes through, in order; smoke-testing only for
	 * a deploy that runs a smoke test (the history shows it had one). */
	function phaseList(data, d) {
		const entry = (data.deployments || []).find((x) => x.id === d.id);
		const smoke = d.phase === "smoke-testing" ||
			(entry && (entry.phases || []).some((p) => p.phase === "smoke-testing"));
		return ["starting", "health-checking", ...(smoke ? ["smoke-testing"] : []), "switched", "done"];
	}

	function deploying(data, managed) {
		const d = managed.deploying, p = d.progress || {};
		const live = managed.live && managed.live.version !== d.version ? managed.live.version : null;
		const from = d.from_version || live;
		const next = known(p.next_decision_ms) && !p.paused
			? h("span", { class: "countdown", data: { until: Date.now() + p.next_decision_ms } },
				` · next decision ${decisionText(p.next_decision_ms)}`) : null;
		const box = h("section", { class: "deploy", data: { deployId: d.id, phase: d.phase },
			"aria-label": `deploy ${d.id} in progress` },
		h("h3", {}, `Deploy #${d.id} in progress: `, from ? `${from} → ` : "", h("strong", {}, d.version),
			h("span", { class: "muted" }, ` (${d.strategy})`)),
		h("p", { class: "deploy-line" }, badge(d.phase),
			p.paused ? badge("paused", `paused: ${p.pause_reason || "by a person"}`) : null,
			p.promoted ? badge("promoted") : null,
			p.extending ? badge("extended", "extended: waiting for more requests") : null,
			h("span", {}, ` running for ${duration(d.elapsed_ms)}`), next),
		phaseTrack(phaseList(data, d), d.phase),
		steps(d, p));
		if (p.verdict)
			box.appendChild(analysis(data, managed.name, p));
		return box;
	}

	function decisionText(left) {
		return left <= 500 ? "now" : `in ${duration(left)}`;
	}

	function phaseTrack(list, phase) {
		const at = list.indexOf(phase);
		return h("ol", { class: "phases", "aria-label": "phases" }, list.map((ph, i) => {
			const s = at < 0 || i > at ? "pending" : i < at ? "done" : "current";
			const mark = s === "done" ? "✓ " : s === "current" ? "▶ " : "";
			const current = s === "current" ? "step" : null;
			return h("li", { data: { state: s, phase: ph }, "aria-current": current },
				mark, ph === "switched" ? "switched & watched" : ph);
		}));
	}

	/* The plan's steps (the status gives the plan; an older daemon only
	 * the current step: then the others are shown without weights). */
	function steps(d, p) {
		const plan = d.plan && d.plan.steps && d.plan.steps.length ? d.plan.steps : null;
		const n = plan ? plan.length : p.steps || 0;
		if (!n)
			return h("p", { class: "muted" }, "no steps yet");
		const batches = plan && plan.some((x) => x.new_instances !== plan[0].new_instances);
		const items = [];
		for (let i = 1; i <= n; i++) {
			const st = plan ? plan[i - 1] : i === p.step ? { new_weight: p.new_weight } : null;
			const state = d.phase !== "switched" || i > p.step ? "pending"
				: i < p.step ? "done" : "current";
			const sub = [];
			if (st && st.hold_ms)
				sub.push(`hold ${duration(st.hold_ms)}`);
			if (st && st.analyse)
				sub.push("analysed");
			if (st && batches)
				sub.push(plural(st.new_instances, "new instance"));
			const mark = state === "current" ? "▶ now" : state === "done" ? "✓ passed" : "";
			items.push(h("li", { data: { step: i, state, newWeight: st ? st.new_weight : null },
				"aria-current": state === "current" ? "step" : null },
			h("span", { class: "step-n" }, `Step ${i} of ${n}`),
			h("span", { class: "step-w" }, st ? `${st.new_weight} % on ${d.version}` : "weights not known"),
			h("span", { class: "step-sub" }, [mark, ...sub].filter(Boolean).join(" · "))));
		}
		return h("ol", { class: "steps", "aria-label": "steps" }, items);
	}

	const FIGURES = ["Version", "Requests", "Errors", "p50", "p99"];
	const CHECKS = ["Check", "Condition", "Measured", "Verdict"];

	function analysis(data, service, p) {
		const figures = (p.versions || []).map((v) => h("tr", { data: { version: v.version } },
			h("th", { scope: "row" }, swatch(data, service, v.version), ` ${v.version} `,
				h("span", { class: "muted" }, `(${v.role})`)),
			h("td", { class: "num" }, count(v.requests)),
			h("td", { class: "num" }, `${count(v.errors)} (${ratio(v.error_rate)})`),
			h("td", { class: "num" }, range(v.p50_ms)),
			h("td", { class: "num" }, range(v.p99_ms))));
		const checks = (p.checks || []).map((c) => h("tr", { data: { check: c.name, state: c.result } },
			h("th", { scope: "row" }, c.name), h("td", {}, c.condition), h("td", {}, c.value),
			h("td", {}, badge(c.result))));
		const got = known(p.measured_new_percent) ? Math.round(p.measured_new_percent * 10) / 10 : null;
		const share = known(got) ? h("span", { class: "muted" },
			` · the new version got ${percent(got)} of the requests`) : null;
		return h("div", { class: "analysis" },
			h("p", {}, h("strong", {}, "Analysis of this step"),
				known(p.window_ms) ? ` over the last ${duration(p.window_ms)}: ` : ": ",
				badge(p.verdict), " ", p.reason || "", share),
			figures.length ? table("figures", null, FIGURES, 1, figures) : null,
			checks.length ? table("checks", "Checks", CHECKS, -1, checks) : null);
	}

	function range(r) {
		if (!r)
			return "–";
		return r[0] === r[1] ? ms(r[0]) : `${ms(r[0])} to ${ms(r[1])}`;
	}

	/* ------------------------------------------------------------ charts */

	/* A legend's key: a short line, coloured and dashed like the chart's. */
	function key(i) {
		const NS = "http://www.w3.org/2000/svg";
		const svg = document.createElementNS(NS, "svg"), l = document.createElementNS(NS, "line");
		const attrs = { class: `key v${i}`, width: 28, height: 10, "aria-hidden": "true" };
		for (const [k, v] of Object.entries(attrs))
			svg.setAttribute(k, v);
		for (const [k, v] of Object.entries({ x1: 1, x2: 27, y1: 5, y2: 5, "stroke-dasharray": DASHES[i] }))
			l.setAttribute(k, v);
		svg.appendChild(l);
		return svg;
	}

	/* An axis tick: round values, no trailing zeros ("2.5", "60"). */
	const tick = (v) => Number(v.toPrecision(3)).toLocaleString();
	const tickMs = (v) => (v >= 1000 ? `${tick(v / 1000)} s` : `${tick(v)} ms`);

	const CHARTS = [
		{ key: "rps", title: "Requests per second", unit: (v, t) => (t ? `${tick(v)}/s` : rate(v)), floor: 1 },
		{ key: "error_rate", title: "Error rate (5xx and failed)",
			unit: (v, t) => (t ? `${tick(v * 100)} %` : ratio(v)), floor: 0.01 },
		{ key: "p50_ms", title: "Latency p50", unit: (v, t) => (t ? tickMs(v) : ms(v)), floor: 1 },
		{ key: "p99_ms", title: "Latency p99", unit: (v, t) => (t ? tickMs(v) : ms(v)), floor: 1 },
	];

	/* Fill the .charts box of a service card with its four charts: the
	 * last 15 minutes, or what a young daemon has (at least a minute). */
	function charts(data, box, name) {
		const now = data.history.now || Date.now();
		const interval = (data.history.interval_s || 5) * 1000;
		const series = [];
		let first = now;
		for (const [k, pts] of data.history.series) {
			const [svc, version] = k.split(SEP);
			if (svc !== name || !pts.length)
				continue;
			/* an unmanaged service has one series, of no version */
			series.push({ version: version || "all requests", pts });
			first = Math.min(first, pts[0].t);
		}
		series.sort((a, b) => slot(data, name, a.version) - slot(data, name, b.version));
		const t0 = Math.max(now - WINDOW_MS, Math.min(first - interval, now - 60000));
		const minutes = Math.min(15, Math.ceil((now - t0) / 60000 - 0.05));
		const markers = (data.deployments || []).filter((d) => d.service === name && d.started_at >= t0)
			.map((d) => ({ t: d.started_at, label: `#${d.id} ${d.to || ""}` }));
		box.replaceChildren();
		for (const c of CHARTS) {
			const fig = h("figure", { class: "chart", data: { chart: c.key, service: name } },
				h("figcaption", {}, h("span", { class: "chart-title" }, c.title),
					h("span", { class: "muted" }, ` · last ${minutes} min`)),
				h("ul", { class: "legend" }, series.map((s) => {
					const last = [...s.pts].reverse().find((p) => known(p[c.key]));
					const fresh = last && now - last.t <= 3 * interval;
					return h("li", {}, key(slot(data, name, s.version)), s.version, " ",
						h("strong", {}, fresh ? c.unit(last[c.key]) : "–"));
				})));
			box.appendChild(fig);   /* in the page first: the chart takes its width */
			const lines = series.map((s) => {
				const i = slot(data, name, s.version);
				const points = s.pts.map((p) => [p.t, p[c.key]]);
				return { label: s.version, cls: `v${i}`, dash: DASHES[i], points };
			});
			fig.appendChild(window.CutoverChart.draw(fig, { title: c.title, unit: c.unit, domain: [t0, now],
				interval_ms: interval, floor: c.floor, markers, series: lines }));
		}
	}

	window.Cutover.service = { card, charts, versionRows };
})();
