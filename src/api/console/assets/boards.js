// complaint-ledger console — the boards ops watch.
//
// Each board is one of the API's list reads (Policies and Cases), with its
// filters as a form, its pages followed by the API's page tokens, and each
// row linking to its case. Text from the ledger is always set as text,
// never parsed as HTML.
"use strict";
var CL = window.CL || (window.CL = {});

// A small element builder: h("a", {href: "#"}, "text", child, ...).
CL.h = function h(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    e.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
};

CL.boards = (function () {
  const h = CL.h;

  const enumText = (v, prefix) => String(v || "").replace(prefix, "").toLowerCase().replace(/_/g, " ");
  const caseLink = (id) => h("a", { href: "#/case/" + encodeURIComponent(id), class: "case-link" }, id);
  const when = (t, off) => (t ? CL.timeline.local(Date.parse(t), off === undefined ? 480 : off) : "");
  const today = () => new Date(Date.now() + 8 * 3600000).toISOString().slice(0, 10);
  // A local date's end, as RFC 3339 in China time (the boards' default).
  const endOf = (date) => (date ? date + "T23:59:59+08:00" : undefined);
  const startOf = (date) => (date ? date + "T00:00:00+08:00" : undefined);

  // The boards: a title, the filters, how they make a request, the rows.
  const BOARDS = {
    promises: {
      title: "Promises due or broken",
      method: ["Policies", "ListPromises"],
      filters: [
        { name: "state", label: "state", options: ["PROMISE_STATE_OPEN", "PROMISE_STATE_BROKEN", "PROMISE_STATE_KEPT", ""], optionLabels: ["open", "broken", "kept", "any"] },
        { name: "dueBy", label: "due by (local date)", type: "date", value: today },
        { name: "evaluate", label: "judged as of (local date, end of day)", type: "date" },
        { name: "line", label: "business line" },
      ],
      request: (f) => ({ state: f.state || undefined, dueBefore: endOf(f.dueBy), evaluateAt: endOf(f.evaluate), businessLine: f.line || undefined }),
      rows: (r) => r.promises || [],
      columns: [
        ["case", (p) => caseLink(p.caseId)],
        ["line", (p) => p.businessLine],
        ["promise", (p) => ((p.promise || {}).promise || {}).promiseId],
        ["what", (p) => ((p.promise || {}).promise || {}).description],
        ["made", (p) => when((p.promise || {}).madeAt)],
        ["due", (p) => when(((p.promise || {}).promise || {}).dueAt)],
        ["state", (p) => h("span", { class: "state state-" + enumText((p.promise || {}).state, "PROMISE_STATE_") }, enumText((p.promise || {}).state, "PROMISE_STATE_"))],
        ["why", (p) => ((p.promise || {}).breachReasons || []).map(CL.timeline.reason).join(", ")],
      ],
    },
    warnings: {
      title: "Warnings",
      method: ["Policies", "ListWarnings"],
      filters: [
        { name: "unanswered", label: "only unanswered", type: "checkbox", value: () => true },
        { name: "rule", label: "rule" },
        { name: "caseId", label: "case" },
      ],
      request: (f) => ({ unansweredOnly: !!f.unanswered, rule: f.rule || undefined, caseId: f.caseId || undefined }),
      rows: (r) => r.warnings || [],
      columns: [
        ["case", (w) => caseLink(w.caseId)],
        ["raised", (w) => when(w.raisedAt)],
        ["rule", (w) => (w.warning || {}).rule],
        ["reason", (w) => (w.warning || {}).reason],
        ["escalate by", (w) => when(w.escalateBy)],
        ["answered", (w) => (w.withdrawnByEventId ? "withdrawn " + when(w.withdrawnAt) : w.answeredByEventId ? when(w.answeredAt) : h("span", { class: w.overdue ? "state state-broken" : "state" }, w.overdue ? "overdue" : "not yet"))],
      ],
    },
    queues: {
      title: "KF-006 queues",
      method: ["Policies", "GetQueue"],
      filters: [
        { name: "kind", label: "queue", options: ["QUEUE_KIND_SURVEY", "QUEUE_KIND_CALLBACK"], optionLabels: ["survey 调研 (Mon–Wed)", "callback 回访 (Thu–Sun)"] },
        { name: "date", label: "date", type: "date", value: today },
        { name: "line", label: "business line" },
      ],
      request: (f) => ({ kind: f.kind, date: f.date, businessLine: f.line || undefined }),
      rows: (r) => r.items || [],
      caption: (r) => "week of " + (r.weekOf || "") + " · " + enumText(r.kind, "QUEUE_KIND_") + " queue for " + (r.date || ""),
      columns: [
        ["case", (i) => caseLink(i.caseId)],
        ["contacted", (i) => when(i.contactedAt)],
        ["channel", (i) => CL.timeline.channel(i.channel)],
        ["by", (i) => i.agentId || ((i.party || {}).id || "")],
        ["factor", (i) => enumText(i.factor, "DISSATISFACTION_FACTOR_")],
        ["", (i) => [i.carriedOver ? h("span", { class: "tag" }, "carried over") : null, i.held ? h("span", { class: "tag tag-held" }, "held: chase " + (i.chaseTickets || []).join(", ")) : null]],
      ],
    },
    scorecard: {
      title: "Agent scorecard",
      method: ["Policies", "GetScorecard"],
      single: true,
      filters: [
        { name: "agent", label: "agent id", required: true },
        { name: "month", label: "month (YYYY-MM)", value: () => today().slice(0, 7) },
      ],
      request: (f) => ({ agentId: f.agent, month: f.month }),
      rows: (r) => (r.judgements || []).map((j) => Object.assign({ counted: true }, j)).concat((r.overturned || []).map((j) => Object.assign({ counted: false }, j))),
      caption: (r) =>
        "agent " + (r.agentId || "") + " · " + (r.month || "") + " · highest level " + (r.highestLevel || 0) + (r.monthFailed ? " · month failed, pay " + (r.payPercent || 0) + "%" : " · month passed") + ((r.consequences || []).length ? " · " + r.consequences.join("; ") : ""),
      columns: [
        ["case", (j) => caseLink(j.caseId || "")],
        ["item", (j) => (j.judgement || {}).item],
        ["judged", (j) => (j.counted ? "counted" : "overturned on appeal")],
        ["appeal", (j) => (j.appealed ? (j.appealDecided ? (j.upheld ? "upheld" : "overturned") : "pending") : "none")],
      ],
    },
    customer: {
      title: "Customer history",
      method: ["Policies", "GetCustomerHistory"],
      single: true,
      filters: [{ name: "customer", label: "customer id", required: true }],
      request: (f) => ({ customerId: f.customer }),
      rows: (r) => r.cases || [],
      caption: (r) => "customer " + (r.customerId || "") + " · " + (r.contacts || 0) + " contacts · " + (r.warnings || 0) + " warnings · " + (r.promisesBroken || 0) + " promises broken · " + (r.externalComplaints || 0) + " outside complaints",
      columns: [
        ["case", (c) => caseLink(c.caseId)],
        ["line", (c) => c.businessLine],
        ["status", (c) => enumText(c.status, "CASE_STATUS_")],
        ["opened", (c) => when(c.openedAt)],
        ["contacts", (c) => c.contacts || 0],
        ["promises kept / broken / open", (c) => (c.promisesKept || 0) + " / " + (c.promisesBroken || 0) + " / " + (c.promisesOpen || 0)],
        ["demands open / fulfilled / declined / withdrawn", (c) => [c.demandsOpen, c.demandsFulfilled, c.demandsDeclined, c.demandsWithdrawn].map((n) => n || 0).join(" / ")],
        ["resolution", (c) => (c.resolved ? (c.resolutionAccepted ? "accepted" : "not accepted") : "none")],
      ],
    },
    cases: {
      title: "Cases",
      method: ["Cases", "ListCases"],
      filters: [
        { name: "status", label: "status", options: ["", "CASE_STATUS_OPEN", "CASE_STATUS_RESOLVED", "CASE_STATUS_CLOSED"], optionLabels: ["any", "open", "resolved", "closed"] },
        { name: "customer", label: "customer id" },
        { name: "agent", label: "agent id" },
        { name: "openPromises", label: "with open promises", type: "checkbox" },
      ],
      request: (f) => ({ status: f.status || undefined, customerId: f.customer || undefined, agentId: f.agent || undefined, onlyWithOpenPromises: !!f.openPromises }),
      rows: (r) => r.cases || [],
      columns: [
        ["case", (c) => caseLink(c.caseId)],
        ["line", (c) => c.businessLine],
        ["customer", (c) => c.customerId],
        ["status", (c) => enumText(c.status, "CASE_STATUS_")],
        ["version", (c) => c.version],
        ["contacts", (c) => c.contacts || 0],
        ["open promises", (c) => c.openPromises || 0],
        ["escalation", (c) => enumText(c.escalationLevel, "ESCALATION_LEVEL_")],
        ["last recorded", (c) => when(c.lastRecordedAt)],
      ],
    },
  };

  // Renders board `name` into `main`; `params` are the filters from the URL.
  function render(main, name, params) {
    const b = BOARDS[name];
    main.replaceChildren();
    main.appendChild(h("h2", {}, b.title));
    const form = h("form", { class: "filters", "data-board": name });
    for (const f of b.filters) {
      const id = "f-" + f.name;
      let input;
      const value = params.has(f.name) ? params.get(f.name) : f.value ? f.value() : "";
      if (f.options) {
        input = h("select", { id, name: f.name }, f.options.map((o, i) => h("option", { value: o, selected: o === value }, f.optionLabels[i])));
      } else if (f.type === "checkbox") {
        input = h("input", { id, name: f.name, type: "checkbox", checked: value === true || value === "1" });
      } else {
        input = h("input", { id, name: f.name, type: f.type || "text", value, required: f.required });
      }
      form.appendChild(h("label", { for: id }, f.label, input));
    }
    form.appendChild(h("button", { type: "submit" }, "Show"));
    main.appendChild(form);
    const out = h("div", { class: "board", id: "board-" + name });
    main.appendChild(out);
    const tokens = [""];
    const values = () => {
      const v = {};
      for (const f of b.filters) {
        const e = form.elements[f.name];
        v[f.name] = f.type === "checkbox" ? e.checked : e.value.trim();
      }
      return v;
    };
    const load = async (page) => {
      const v = values();
      if (b.filters.some((f) => f.required && !v[f.name])) {
        out.replaceChildren(h("p", { class: "hint" }, "Fill in " + b.filters.filter((f) => f.required).map((f) => f.label).join(", ") + "."));
        return;
      }
      const req = b.request(v);
      if (!b.single) {
        req.pageSize = 50;
        req.pageToken = tokens[page] || undefined;
      }
      out.replaceChildren(h("p", { class: "hint" }, "Loading…"));
      let r;
      try {
        r = await CL.api.call(b.method[0], b.method[1], req);
      } catch (e) {
        out.replaceChildren(CL.errorBox(e));
        return;
      }
      const rows = b.rows(r);
      const table = h(
        "table",
        { class: "rows" },
        h("thead", {}, h("tr", {}, b.columns.map((c) => h("th", {}, c[0])))),
        h("tbody", {}, rows.map((row) => h("tr", {}, b.columns.map((c) => h("td", {}, c[1](row))))))
      );
      const parts = [];
      if (b.caption) parts.push(h("p", { class: "caption" }, b.caption(r)));
      parts.push(rows.length ? table : h("p", { class: "hint empty" }, "Nothing on this page."));
      if (!b.single) {
        if (r.nextPageToken) tokens[page + 1] = r.nextPageToken;
        parts.push(
          h(
            "div",
            { class: "pager" },
            h("button", { type: "button", disabled: page === 0, onclick: () => load(page - 1) }, "← previous"),
            h("span", {}, " page " + (page + 1) + " "),
            h("button", { type: "button", disabled: !r.nextPageToken, onclick: () => load(page + 1) }, "next →")
          )
        );
      }
      out.replaceChildren(...parts);
    };
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      tokens.length = 1;
      load(0);
    });
    load(0);
  }

  return { render, names: Object.keys(BOARDS), titles: Object.fromEntries(Object.entries(BOARDS).map(([k, b]) => [k, b.title])) };
})();
