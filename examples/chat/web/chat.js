// weft-chat's browser client: the JSON protocol over a WebSocket (/ws).
// Every line the server sends is one JSON object; see docs/chat.md.
"use strict";
const $ = (id) => document.getElementById(id);
let ws, me = null, room = null;
const members = new Set();

function show(kind, text, ts) {
  const li = document.createElement("li");
  li.className = kind;
  const when = ts ? new Date(ts).toISOString().slice(11, 19) + " " : "";
  li.textContent = when + text;
  $("log").appendChild(li);
  li.scrollIntoView({ block: "end" });
}

function showMembers() {
  const ul = $("members");
  ul.textContent = "";
  for (const m of [...members].sort((a, b) => a.localeCompare(b))) {
    const li = document.createElement("li");
    li.textContent = m;
    ul.appendChild(li);
  }
}

function send(obj) { ws.send(JSON.stringify(obj)); }

function onMessage(ev) {
  const m = JSON.parse(ev.data);
  switch (m.type) {
    case "welcome": $("status").textContent = "connected"; break;
    case "message": show("message", "<" + m.user + "> " + m.data, m.ts); break;
    case "history": show("history", "<" + m.user + "> " + m.data, m.ts); break;
    case "private": show("private", "*" + m.user + "* " + m.data, m.ts); break;
    case "join":
      members.add(m.user); showMembers();
      show("join", m.user + " joined #" + m.room, m.ts);
      if (m.user === me) send({ type: "who" });
      break;
    case "leave":
      members.delete(m.user); showMembers();
      show("leave", m.user + " left #" + m.room + (m.reason ? " (" + m.reason + ")" : ""), m.ts);
      break;
    case "nick": members.delete(m.old); members.add(m.user); showMembers(); break;
    case "file": show("file", m.user + " shares " + m.name + " (" + m.size + " bytes)", m.ts); break;
    case "error": show("error", "error: " + m.data); break;
    case "notice": {
      const who = /^members of #\S+ \(\d+\):(.*)$/.exec(m.data);
      if (who) {
        members.clear();
        for (const n of who[1].trim().split(/\s+/)) if (n) members.add(n);
        showMembers();
        break;
      }
      const li = /^logged in as (\S+)$/.exec(m.data);
      if (li) { me = li[1]; $("status").textContent = "logged in as " + me; }
      show("notice", m.data);
      break;
    }
  }
  if (window.onChat) window.onChat(m);
}

function say(text) {
  const pm = /^\/msg (\S+) (.+)$/.exec(text);
  if (pm) {
    send({ type: "private", user: pm[1], data: pm[2] });
    show("private", "-> " + pm[1] + ": " + pm[2]);
  } else if (text) {
    send({ type: "message", data: text });
  }
}

function join(r) { room = r; members.clear(); showMembers(); send({ type: "join", room: r }); }

function connect() {
  ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
  ws.onmessage = onMessage;
  ws.onclose = (ev) => { $("status").textContent = "closed (" + ev.code + ")"; };
  return new Promise((ok) => { ws.onopen = ok; });
}

$("do-login").onclick = () => send({ type: "login", user: $("user").value, password: $("pass").value });
$("do-register").onclick = () => send({ type: "register", user: $("user").value, password: $("pass").value });
$("do-join").onclick = () => join($("room").value);
$("say").onsubmit = (e) => { e.preventDefault(); say($("text").value); $("text").value = ""; };

// A scripted session for tests, from the query string:
//   ?auto=1&user=U&pass=P&room=R&say=TEXT&to=NAME&pm=TEXT&expect=N&want=T1|T2&report=OBS
// registers U (if new), logs in, joins R; once `expect` other members are
// in the room, says TEXT and sends PM to NAME; once every line of `want`
// is on the page (or 10 s passed), it sends what the page shows (members
// and log lines) as a private message to OBS, so a test can check it
// without driving the browser.
async function auto(q) {
  const wait = (pred) => new Promise((ok) => {
    if (pred(null)) return ok();
    const prev = window.onChat;
    window.onChat = (m) => { if (prev) prev(m); if (pred(m)) { window.onChat = prev; ok(m); } };
  });
  const shown = () => [...document.querySelectorAll("#log li")].map((li) => li.textContent);
  await connect();
  send({ type: "register", user: q.get("user"), password: q.get("pass") });
  await wait((m) => m && (m.type === "notice" || m.type === "error"));
  send({ type: "login", user: q.get("user"), password: q.get("pass") });
  await wait((m) => m && m.type === "notice" && m.data.startsWith("logged in"));
  join(q.get("room"));
  await wait(() => members.size >= 1 + Number(q.get("expect") || 0));
  say(q.get("say"));
  if (q.get("to")) say("/msg " + q.get("to") + " " + q.get("pm"));
  const want = (q.get("want") || "").split("|").filter((w) => w);
  const all = () => want.every((w) => shown().some((t) => t.includes(w)));
  await Promise.race([wait(all), new Promise((ok) => setTimeout(ok, 10000))]);
  if (q.get("report"))
    send({ type: "private", user: q.get("report"),
           data: JSON.stringify({ members: [...members].sort(), log: shown() }) });
}

const q = new URLSearchParams(location.search);
if (q.get("auto")) auto(q); else connect();
