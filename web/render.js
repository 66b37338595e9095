/* render.js - the status page's views: plain functions from the data the
 * daemon gave (app.js keeps it in one `data` object) to DOM nodes.
 *
 *   service(data, name)  a service's card: health, maintenance, uptime,
 *                        versions with their instances and traffic split
 *                        (set and measured), the deploy in flight, charts
 *   deployments(data)    the deploy history table, phases included
 *   releases(data)       the releases in flight
 *   feed(data)           the last events of the stream
 *
 * Stable hooks for tests and scripts: data-service, data-version,
 * data-weight (the share of new requests set, in percent), data-measured,
 * data-role, data-chart + data-points, data-deploy-id, data-step,
 * data-check, data-state.  Nothing here fetches or keeps state.
 */
(function () {
	"use strict";

	const { h, count, rate, ratio, percent, ms, duration, when, badge, stateOf } = window.Cutover.fmt;
	const WINDOW_MS = 15 * 60 * 1000;
	const DASHES = ["none", "7 4", "2 3", "10 3 2 3", "4 4", "1 2"];

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
		const i = slot(data, service, version);
		return h("span", { class: `swatch v${i}`, "aria-hidden": "true" });
	}

	/* ------------------------------------------------------------ model */

	const ROLE_ORDER = { live: 0, green: 1, warm: 2 };

	/* The versions of a service as rows: proxy weights joined with the
	 * deployer's instances; live first, then the new one, then warm. */
	function versionRows(proxy, managed) {
		const rows = new Map();
		const row = (v) => {
			if (!rows.has(v))
				rows.set(v, { version: v, set: null, instances: [], roles: new Set(), targets: [] });
			return rows.get(v);
		};
		for (const v of (proxy && proxy.versions) || []) {
			const r = row(v.version);
			r.set = v.share_percent;
			r.targets = v.targets || [];
		}
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
			return managed && managed.strategy === "canary" ? "canary" : "new";
		if (r.roles.has("warm"))
			return "warm (previous)";
		return "–";
	}

	/* healthy | degraded | down | idle, and a sentence. */
	function serviceHealth(managed, proxy) {
		if (!managed) {
			const t = (proxy && proxy.targets) || [];
			return ["unknown", `${t.length} static target${t.length === 1 ? "" : "s"}, not supervised`];
		}
		const live = managed.instances.filter((i) => i.role === "live");
		if (!live.length)
			return managed.deploying ? ["starting", "first version starting"] : ["unknown", "no version deployed"];
		const ok = live.filter((i) => i.health === "healthy" && i.state === "running").length;
		const what = `${ok} of ${live.length} live instance${live.length === 1 ? "" : "s"} healthy`;
		if (ok === live.length)
			return ["healthy", what];
		return [ok ? "degraded" : "down", what];
	}

	function latest(points, now, interval) {
		if (!points || !points.length)
			return null;
		const p = points[points.length - 1];
		return now - p.t <= 3 * interval ? p : null;
	}

	/* ------------------------------------------------------------ service */

	function service(data, name) {
		const st = data.status;
		const managed = (st.managed || []).find((m) => m.name === name) || null;
		const proxy = (st.services || []).find((s) => s.name === name) || null;
		const [health, healthText] = serviceHealth(managed, proxy);
		const inMaintenance = !!((managed && managed.maintenance) || (proxy && proxy.maintenance));
		const card = h("section", { class: "card service", data: { service: name, health, maintenance: inMaintenance ? "on" : null },
			"aria-labelledby": `svc-${name}` });

		const head = h("div", { class: "card-head" },
			h("h2", { id: `svc-${name}` }, name),
			badge(health, health === "unknown" ? healthText : null),
			health !== "unknown" ? h("span", { class: "muted" }, healthText) : null,
			maintenance(managed && "maintenance" in managed ? managed : proxy),
			h("span", { class: "spacer" }),
			uptime(data, name));
		card.appendChild(head);

		const facts = [];
		if (managed) {
			facts.push(["strategy", managed.strategy || "–"]);
			facts.push(["instances per version", count(managed.instances_per_version)]);
			facts.push(["a rollback goes to", managed.rollback_to || "nothing (no earlier version)"]);
		}
		if (proxy && proxy.routes)
			facts.push(["routes", proxy.routes.map((r) => `${r.host || "*"}${r.path || "/"}`).join(", ")]);
		card.appendChild(h("dl", { class: "facts" }, facts.map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, v)))));

		if (managed) {
			const rows = versionRows(proxy, managed);
			card.appendChild(versionsTable(data, name, rows, managed));
			card.appendChild(splitBars(data, name, rows));
		} else {
			card.appendChild(targetsTable(data, name, proxy));
		}
		if (managed && managed.awaiting_approval && managed.awaiting_approval.length)
			card.appendChild(awaiting(managed));
		if (managed && managed.deploying)
			card.appendChild(deploying(data, managed));
		card.appendChild(h("div", { class: "charts", data: { charts: name } }));
		return card;
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
		return h("span", { class: "maint" }, b, " since ", when(m.since), m.by ? ` by ${m.by}` : "",
			`, Retry-After ${count(m.retry_after)} s`, m.page ? ", own page" : "");
	}

	function uptime(data, name) {
		const u = data.uptime && data.uptime.get(name);
		if (data.errors["/v1/uptime"])
			return h("span", { class: "uptime muted", title: `/v1/uptime: ${data.errors["/v1/uptime"]}` },
				"uptime: could not be read");
		if (!u)
			return h("span", { class: "uptime muted" }, "uptime: –");
		return h("span", { class: "uptime" }, (u.windows || []).map((w) => {
			const a = w.availability;
			const tone = a === null || a === undefined ? "idle" : a >= 0.999 ? "ok" : a >= 0.99 ? "warn" : "bad";
			const label = w.window.replace(/(\d+)([a-z])/, "$1 $2");
			const text = a === null || a === undefined ? "no requests" : `${(a * 100).toFixed(a === 1 ? 0 : 3)} %`;
			return h("span", { class: `up tone-${tone}`, data: { uptimeWindow: w.window },
				title: `${count(w.failed)} failed of ${count(w.requests)} requests` },
			h("span", { class: "up-k" }, `uptime ${label}`), " ", h("strong", {}, text));
		}));
	}

	function versionsTable(data, name, rows, managed) {
		const interval = (data.history.interval_s || 5) * 1000;
		const now = data.history.now || Date.now();
		const body = rows.map((r) => {
			const pts = data.history.series.get(`${name}\u0000${r.version}`);
			const p = latest(pts, now, interval);
			const split = (data.history.split || []).find((s) => s.service === name && s.version === r.version);
			const measured = split ? split.measured : null;
			const weight = r.set === null ? null : Math.round(r.set);
			return h("tr", { data: { version: r.version, weight, measured, role: [...r.roles].join(" ") || null } },
				h("th", { scope: "row" }, swatch(data, name, r.version), " ", r.version),
				h("td", {}, roleName(r, managed)),
				h("td", {}, instances(r, managed)),
				h("td", { class: "num strong", data: { col: "set" } }, percent(r.set)),
				h("td", { class: "num", data: { col: "measured" } }, percent(measured)),
				h("td", { class: "num" }, p ? rate(p.rps) : "–"),
				h("td", { class: `num ${p && p.error_rate > 0.01 ? "tone-text-bad" : ""}` }, p ? ratio(p.error_rate) : "–"),
				h("td", { class: "num" }, p ? ms(p.p50_ms) : "–"),
				h("td", { class: "num" }, p ? ms(p.p99_ms) : "–"));
		});
		return h("div", { class: "table-wrap" }, h("table", { class: "versions" },
			h("caption", {}, "Versions ", h("span", { class: "muted" }, "(rates and latencies: the last 5 s)")),
			h("thead", {}, h("tr", {}, ["Version", "Role", "Instances", "Traffic set", "Measured (30 s)",
				"Rate", "Errors", "p50", "p99"].map((c, i) => h("th", { scope: "col", class: i > 2 ? "num" : "" }, c)))),
			h("tbody", {}, body.length ? body : h("tr", {}, h("td", { colspan: 9, class: "muted" }, "no version runs")))));
	}

	/* An unmanaged service: its configured targets and the proxy's counts
	 * (since the daemon started); its figures of the last 5 s. */
	function targetsTable(data, name, proxy) {
		const interval = (data.history.interval_s || 5) * 1000;
		const p = latest(data.history.series.get(`${name}\u0000`), data.history.now || Date.now(), interval);
		const targets = (proxy && proxy.targets) || [];
		const total = targets.reduce((a, t) => a + (t.weight || 0), 0) || 1;
		return h("div", { class: "table-wrap" }, h("table", { class: "targets" },
			h("caption", {}, "Targets ", h("span", { class: "muted" }, "(counts since the daemon started)"),
				p ? h("span", { class: "now" }, ` now ${rate(p.rps)}, errors ${ratio(p.error_rate)}, p50 ${ms(p.p50_ms)}, p99 ${ms(p.p99_ms)}`) : null),
			h("thead", {}, h("tr", {}, ["Target", "Weight", "Requests", "5xx", "Connect failures", "Open connections"]
				.map((c, i) => h("th", { scope: "col", class: i ? "num" : "" }, c)))),
			h("tbody", {}, targets.map((t) => h("tr", { data: { target: t.address, weight: Math.round((100 * t.weight) / total) } },
				h("th", { scope: "row" }, t.address),
				h("td", { class: "num" }, `${t.weight} (${percent(Math.round((1000 * t.weight) / total) / 10)})`),
				h("td", { class: "num" }, count(t.requests)),
				h("td", { class: `num ${t.errors_5xx ? "tone-text-bad" : ""}` }, count(t.errors_5xx)),
				h("td", { class: `num ${t.connect_failures ? "tone-text-bad" : ""}` }, count(t.connect_failures)),
				h("td", { class: "num" }, count(t.open_connections)))))));
	}

	function instances(r, managed) {
		if (!r.instances.length)
			return h("span", { class: "muted" }, "none");
		return h("span", { class: "inst" }, r.instances.map((i) => {
			const state = i.state !== "running" ? i.state : i.health === "healthy" ? "healthy" : i.health;
			const [tone, sym] = stateOf(state);
			const tip = `${i.address} · pid ${i.pid || "–"} · ${i.state} · health ${i.health} · ` +
				`${count(i.restarts)} restart${i.restarts === 1 ? "" : "s"}` + (i.warning ? ` · ${i.warning}` : "");
			return h("span", { class: `chip tone-${tone}`, title: tip, data: { instance: i.address, state } },
				h("span", { class: "sym", "aria-hidden": "true" }, sym), ` :${i.port} ${stateOf(state)[2]}`,
				i.restarts ? ` · ${i.restarts}↻` : "", i.warning ? h("span", { class: "warn-text" }, ` · ${i.warning}`) : null);
		}));
	}

	/* Two stacked bars: the split as set, and as measured over 30 s. */
	function splitBars(data, name, rows) {
		const bar = (label, key, values) => {
			const total = values.reduce((a, v) => a + (v.value || 0), 0);
			return h("div", { class: "split-row", data: { split: key } },
				h("span", { class: "split-label" }, label),
				h("div", { class: "split-bar", role: "img", "aria-label":
					`${label}: ${values.map((v) => `${v.version} ${percent(v.value)}`).join(", ")}` },
				total ? values.filter((v) => v.value > 0).map((v) => {
					const seg = h("span", { class: `seg v${slot(data, name, v.version)}`, title: `${v.version}: ${percent(v.value)}` },
						v.value / total >= 0.12 ? `${v.version} ${percent(v.value)}` : "");
					seg.style.flexGrow = String(v.value);
					return seg;
				}) : h("span", { class: "seg empty" }, "no data yet")),
				h("span", { class: "split-text" }, values.map((v, i) => [i ? " · " : "", swatch(data, name, v.version),
					` ${v.version} `, h("strong", {}, percent(v.value))])));
		};
		const set = rows.filter((r) => r.set !== null).map((r) => ({ version: r.version, value: r.set }));
		const measured = (data.history.split || []).filter((s) => s.service === name && s.measured !== null)
			.map((s) => ({ version: s.version, value: s.measured }));
		return h("div", { class: "split" }, bar("set", "set", set), bar("measured", "measured", measured));
	}

	function awaiting(managed) {
		return h("div", { class: "awaiting" }, h("h3", {}, badge("awaiting-approval"), " Waiting for a person"),
			h("ul", {}, managed.awaiting_approval.map((a) => h("li", { data: { deployId: a.id } },
				`#${a.id}: ${managed.name} ${a.version}, asked by ${a.requested_by}`,
				a.promoted_from ? ` (promoted from ${a.promoted_from})` : "", "; expires ", when(a.expires_at_ms),
				h("span", { class: "muted" }, ` · cutover approve ${a.id}`)))));
	}

	/* ------------------------------------------------------------ deploy in flight */

	/* The phases a deploy goes through, in order; smoke-testing only for
	 * a deploy that runs a smoke test (the history shows it had one). */
	function phaseList(data, d) {
		const entry = (data.deployments || []).find((x) => x.id === d.id);
		const smoke = d.phase === "smoke-testing" || (entry && (entry.phases || []).some((p) => p.phase === "smoke-testing"));
		return ["starting", "health-checking", smoke ? "smoke-testing" : null, "switched", "done"].filter(Boolean);
	}

	function deploying(data, managed) {
		const d = managed.deploying, p = d.progress || {};
		const from = d.from_version || (managed.live && managed.live.version !== d.version ? managed.live.version : null);
		const paused = p.paused ? badge("paused", `paused: ${p.pause_reason || "by a person"}`) : null;
		const box = h("section", { class: "deploy", data: { deployId: d.id, phase: d.phase }, "aria-label": `deploy ${d.id} in progress` },
			h("h3", {}, `Deploy #${d.id} in progress: `, from ? `${from} → ` : "", h("strong", {}, d.version),
				h("span", { class: "muted" }, ` (${d.strategy})`)),
			h("p", { class: "deploy-line" }, badge(d.phase), paused, p.promoted ? badge("done", "promoted") : null,
				p.extending ? badge("inconclusive", "extended: waiting for more requests") : null,
				h("span", {}, ` running for ${duration(d.elapsed_ms)}`),
				p.next_decision_ms !== null && p.next_decision_ms !== undefined && !p.paused
					? h("span", { class: "countdown", data: { until: Date.now() + p.next_decision_ms } },
						` · next decision ${decisionText(p.next_decision_ms)}`) : null),
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
			const s = at < 0 ? "pending" : i < at ? "done" : i === at ? "current" : "pending";
			return h("li", { data: { state: s, phase: ph }, "aria-current": s === "current" ? "step" : null },
				s === "done" ? "✓ " : s === "current" ? "▶ " : "", ph === "switched" ? "switched & watched" : ph);
		}));
	}

	/* The plan's steps (the status gives the plan; an older daemon only
	 * the current step: then the others are shown without weights). */
	function steps(d, p) {
		const plan = d.plan && d.plan.steps && d.plan.steps.length ? d.plan.steps : null;
		const n = plan ? plan.length : p.steps || 0;
		if (!n)
			return h("p", { class: "muted" }, "no steps yet");
		const switched = d.phase === "switched";
		const items = [];
		for (let i = 1; i <= n; i++) {
			const st = plan ? plan[i - 1] : i === p.step ? { new_weight: p.new_weight, old_weight: p.old_weight } : null;
			const state = !switched ? "pending" : i < p.step ? "done" : i === p.step ? "current" : "pending";
			const sub = [];
			if (st && st.hold_ms)
				sub.push(`hold ${duration(st.hold_ms)}`);
			if (st && st.analyse)
				sub.push("analysed");
			if (st && st.new_instances && d.plan && d.plan.steps.some((x) => x.new_instances !== st.new_instances))
				sub.push(`${st.new_instances} new instance${st.new_instances === 1 ? "" : "s"}`);
			items.push(h("li", { data: { step: i, state, newWeight: st ? st.new_weight : null },
				"aria-current": state === "current" ? "step" : null },
			h("span", { class: "step-n" }, `Step ${i} of ${n}`),
			h("span", { class: "step-w" }, st ? `${st.new_weight} % on ${d.version}` : "weights not known"),
			h("span", { class: "step-sub" }, state === "current" ? "▶ now" : state === "done" ? "✓ passed" : "",
				sub.length ? `${state === "pending" ? "" : " · "}${sub.join(" · ")}` : "")));
		}
		return h("ol", { class: "steps", "aria-label": "steps" }, items);
	}

	function analysis(data, service, p) {
		const figures = (p.versions || []).map((v) => h("tr", { data: { version: v.version } },
			h("th", { scope: "row" }, swatch(data, service, v.version), ` ${v.version} `, h("span", { class: "muted" }, `(${v.role})`)),
			h("td", { class: "num" }, count(v.requests)),
			h("td", { class: "num" }, `${count(v.errors)} (${ratio(v.error_rate)})`),
			h("td", { class: "num" }, range(v.p50_ms)),
			h("td", { class: "num" }, range(v.p99_ms))));
		const checks = (p.checks || []).map((c) => h("tr", { data: { check: c.name, state: c.result } },
			h("th", { scope: "row" }, c.name), h("td", {}, c.condition), h("td", {}, c.value), h("td", {}, badge(c.result))));
		return h("div", { class: "analysis" },
			h("p", {}, h("strong", {}, "Analysis of this step"),
				p.window_ms !== undefined ? ` over the last ${duration(p.window_ms)}: ` : ": ", badge(p.verdict),
				" ", p.reason || "",
				p.measured_new_percent !== null && p.measured_new_percent !== undefined
					? h("span", { class: "muted" }, ` · the new version got ${percent(Math.round(p.measured_new_percent * 10) / 10)} of the requests`) : null),
			figures.length ? h("div", { class: "table-wrap" }, h("table", { class: "figures" },
				h("thead", {}, h("tr", {}, ["Version", "Requests", "Errors", "p50", "p99"].map((c, i) =>
					h("th", { scope: "col", class: i ? "num" : "" }, c)))), h("tbody", {}, figures))) : null,
			checks.length ? h("div", { class: "table-wrap" }, h("table", { class: "checks" },
				h("caption", {}, "Checks"),
				h("thead", {}, h("tr", {}, ["Check", "Condition", "Measured", "Verdict"].map((c) => h("th", { scope: "col" }, c)))),
				h("tbody", {}, checks))) : null);
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
		for (const [k, v] of Object.entries({ class: `key v${i}`, width: 28, height: 10, "aria-hidden": "true" }))
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
		{ key: "error_rate", title: "Error rate (5xx and failed)", unit: (v, t) => (t ? `${tick(v * 100)} %` : ratio(v)),
			floor: 0.01 },
		{ key: "p50_ms", title: "Latency p50", unit: (v, t) => (t ? tickMs(v) : ms(v)), floor: 1 },
		{ key: "p99_ms", title: "Latency p99", unit: (v, t) => (t ? tickMs(v) : ms(v)), floor: 1 },
	];

	/* Fill the .charts box of a service card with its four charts. */
	function charts(data, box, name) {
		const now = data.history.now || Date.now();
		const interval = (data.history.interval_s || 5) * 1000;
		const series = [];
		let first = now;
		for (const [k, pts] of data.history.series) {
			const [svc, version] = k.split("\u0000");
			if (svc !== name || !pts.length)
				continue;
			series.push({ version: version || "all requests", pts });
			first = Math.min(first, pts[0].t);
		}
		series.sort((a, b) => slot(data, name, a.version) - slot(data, name, b.version));
		/* a young daemon: the window is what it has seen (at least a minute) */
		const t0 = Math.max(now - WINDOW_MS, Math.min(first - interval, now - 60000));
		const markers = (data.deployments || []).filter((d) => d.service === name && d.started_at >= t0)
			.map((d) => ({ t: d.started_at, label: `#${d.id} ${d.to || ""}` }));
		const span = now - t0;
		box.replaceChildren(...CHARTS.map((c) => {
			const fig = h("figure", { class: "chart", data: { chart: c.key, service: name } });
			const legend = h("ul", { class: "legend" }, series.map((s) => {
				const last = [...s.pts].reverse().find((p) => p[c.key] !== null && p[c.key] !== undefined);
				const i = slot(data, name, s.version);
				return h("li", {}, key(i), s.version, " ",
					h("strong", {}, last && now - last.t <= 3 * interval ? c.unit(last[c.key]) : "–"));
			}));
			fig.append(h("figcaption", {}, h("span", { class: "chart-title" }, c.title),
				h("span", { class: "muted" }, ` · last ${Math.min(15, Math.ceil(span / 60000 - 0.05))} min`)), legend);
			box.appendChild(fig);
			fig.appendChild(window.CutoverChart.draw(fig, {
				title: c.title, unit: c.unit, domain: [t0, now], interval_ms: interval, floor: c.floor, markers,
				series: series.map((s) => ({ label: s.version, cls: `v${slot(data, name, s.version)}`,
					dash: DASHES[slot(data, name, s.version)], points: s.pts.map((p) => [p.t, p[c.key]]) })),
			}));
			return fig;
		}));
	}

	/* ------------------------------------------------------------ history */

	function deployments(data, open) {
		const list = data.deployments || [];
		const err = data.errors["/v1/deployments"];
		if (err)
			return h("p", { class: "load-error" }, badge("unknown", "not read"),
				` The deploy history could not be read (/v1/deployments: ${err}); it is read again on the next deploy event, or in 30 s.`);
		if (!list.length)
			return h("p", { class: "muted" }, "No deploy recorded yet.");
		const rows = [];
		for (const d of list) {
			const finished = !!d.finished_at;
			const state = finished ? d.state : "in progress";
			const change = d.from && d.from !== d.to ? `${d.from} → ${d.to}` : d.to;
			const dur = d.duration_ms ?? (finished ? d.finished_at - d.started_at : null);
			rows.push(h("tr", { class: "dep", data: { deployId: d.id, state: d.state, service: d.service } },
				h("th", { scope: "row" }, `#${d.id}`),
				h("td", {}, d.service),
				h("td", {}, change, d.kind && d.kind !== "deploy" ? h("span", { class: "muted" }, ` (${d.kind})`) : null),
				h("td", {}, d.strategy || "–"),
				h("td", {}, finished ? badge(d.state) : badge(d.state, `in progress: ${stateOf(d.state)[2]}`)),
				h("td", {}, window.Cutover.fmt.clock(d.started_at), h("div", { class: "muted small" }, when(d.started_at, { style: "age" }))),
				h("td", { class: "num" }, finished ? duration(dur) : h("span", { class: "muted" }, "running"))));
			rows.push(h("tr", { class: "dep-more", data: { phasesOf: d.id } },
				h("td", {}), h("td", { colspan: 6 },
					d.reason ? h("p", { class: "reason", data: { reason: "" } }, h("span", { class: "muted" }, "Reason: "), d.reason) : null,
					phases(d, open, state))));
		}
		return h("div", { class: "table-wrap" }, h("table", { class: "history" },
			h("thead", {}, h("tr", {}, ["Deploy", "Service", "Change", "Strategy", "Result", "Started", "Took"]
				.map((c, i) => h("th", { scope: "col", class: i === 6 ? "num" : "" }, c)))),
			h("tbody", {}, rows)));
	}

	/* A deploy's phases: a bar (widths by duration) and, on demand, the list. */
	function phases(d, open, state) {
		const ph = d.phases || [];
		const total = ph.reduce((a, p) => a + Math.max(0, p.duration_ms || 0), 0) || 1;
		const bar = h("div", { class: "phase-bar", "aria-hidden": "true" }, ph.map((p) => {
			const seg = h("span", { class: `tone-bg-${stateOf(p.phase)[0]}`, title: `${p.phase}: ${duration(p.duration_ms)}` });
			seg.style.flexGrow = String(Math.max(total / 60, p.duration_ms || 0));
			return seg;
		}));
		const det = h("details", { data: { deployId: d.id }, open: open.has(d.id) || null },
			h("summary", {}, `${ph.length} phase${ph.length === 1 ? "" : "s"}`, bar),
			h("ol", { class: "phase-list" }, ph.map((p) => h("li", { data: { phase: p.phase } },
				h("span", { class: "ph-name" }, badge(p.phase)),
				h("span", { class: "ph-at" }, window.Cutover.fmt.clock(p.at)),
				h("span", { class: "ph-dur num" }, duration(p.duration_ms)),
				h("span", { class: "ph-detail" }, p.detail || "")))));
		det.addEventListener("toggle", () => (det.open ? open.add(d.id) : open.delete(d.id)));
		return det;
	}

	/* ------------------------------------------------------------ releases, feed */

	function releases(data) {
		const list = (data.status && data.status.releases) || [];
		return h("ul", { class: "releases" }, list.map((r) => h("li", { data: { releaseId: r.id, state: r.state } },
			badge(r.state === "running" ? "switching" : r.state, r.state.replace(/-/g, " ")),
			` release #${r.id} ${r.name}: group ${r.group} of ${r.groups}`)));
	}

	function feedText(e) {
		const d = e.data || {};
		switch (e.kind) {
		case "hello":
			return [null, `connected to cutover ${d.version} (pid ${d.pid})`];
		case "deployment": {
			let state = d.result || d.phase;
			if (d.phase === "analysis")
				state = /fail/.test(d.detail || "") ? "fail" : /pass/.test(d.detail || "") ? "pass" : "inconclusive";
			const reason = d.reason && d.reason !== d.detail ? `: ${d.reason}` : "";
			const what = `${d.detail || ""}${reason}`.replace(/^: /, "");
			return [state, `#${d.id} ${d.service} ${d.version}${d.kind && d.kind !== "deploy" ? ` (${d.kind})` : ""}` +
				(what ? `: ${what}` : "")];
		}
		case "instance":
			return [d.state, `${d.service} ${d.version} :${d.port}${d.pid ? ` (pid ${d.pid})` : ""}${d.detail ? `: ${d.detail}` : ""}`];
		case "maintenance": {
			const m = d.maintenance;
			if (!m)
				return ["live", `${d.service}: maintenance off, traffic flows again`, "maintenance off"];
			return ["maintenance", `${d.service}: answering 503 (Retry-After ${m.retry_after} s${m.page ? ", its own page" : ""})` +
				`${m.by ? `, by ${m.by}` : ""}`, "maintenance on"];
		}
		case "release":
			return [d.phase, `release #${d.id} ${d.name || ""}: ${d.phase}${d.detail ? `: ${d.detail}` : ""}`];
		default:
			return [null, `${e.kind}: ${JSON.stringify(d).slice(0, 200)}`];
		}
	}

	function feed(data) {
		if (!data.feed.length)
			return h("p", { class: "muted" }, "Nothing has happened since this page opened.");
		return h("ol", { class: "feed" }, data.feed.map((e) => {
			const [state, text, words] = feedText(e);
			return h("li", { data: { kind: e.kind } }, h("span", { class: "feed-at" }, when(e.at, { style: "both" })),
				state ? badge(state, words) : h("span", { class: "badge tone-idle" }, e.kind), " ", text);
		}));
	}

	window.Cutover.render = { service, charts, deployments, releases, feed, versionRows };
})();
