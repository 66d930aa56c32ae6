(() => {
  const root = document.documentElement;
  const KEY = "qfa-lang";
  const stored = () => {
    try { return localStorage.getItem(KEY); } catch (e) { return null; }
  };
  const choose = (lang) => {
    root.setAttribute("data-lang", lang);
    root.lang = lang === "zh" ? "zh-CN" : "en";
  };
  const saved = stored();
  choose(saved === "en" || saved === "zh" ? saved : /^zh/i.test(navigator.language || "") ? "zh" : "en");

  const fallbackCopy = (text) => {
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "offscreen";
    document.body.appendChild(area);
    area.select();
    try { return document.execCommand("copy"); } catch (e) { return false; } finally { area.remove(); }
  };
  const copy = async (text) => {
    if (navigator.clipboard && window.isSecureContext) {
      try { await navigator.clipboard.writeText(text); return true; } catch (e) { /* fall back */ }
    }
    return fallbackCopy(text);
  };
  const flash = (button, state) => {
    button.setAttribute("data-state", state);
    setTimeout(() => button.removeAttribute("data-state"), 1500);
  };

  const show = (status) => {
    for (const [state, count] of Object.entries(status.accounts || {})) {
      const cell = document.querySelector(`[data-count="${state}"]`);
      if (cell) cell.textContent = String(count);
    }
    const total = Object.values(status.accounts || {}).reduce((a, b) => a + b, 0);
    const totalCell = document.querySelector("[data-count=total]");
    if (totalCell) totalCell.textContent = String(total);
    const meta = document.getElementById("updated");
    meta.classList.remove("stale");
    meta.querySelector("time").textContent = new Date().toLocaleTimeString();
    root.setAttribute("data-refreshed", String(Date.now()));
  };
  const refresh = async () => {
    try {
      const answer = await fetch("status", { cache: "no-store" });
      if (!answer.ok) throw new Error(String(answer.status));
      show(await answer.json());
    } catch (e) {
      document.getElementById("updated").classList.add("stale");
    }
  };

  document.addEventListener("DOMContentLoaded", () => {
    document.getElementById("lang").addEventListener("click", () => {
      const next = root.getAttribute("data-lang") === "zh" ? "en" : "zh";
      choose(next);
      try { localStorage.setItem(KEY, next); } catch (e) { /* private mode */ }
    });
    for (const button of document.querySelectorAll("button[data-copy]")) {
      button.addEventListener("click", async () => {
        const code = document.getElementById(button.getAttribute("data-copy"));
        flash(button, (await copy(code.textContent)) ? "copied" : "failed");
      });
    }
    document.getElementById("refresh").addEventListener("click", refresh);
    refresh();
    setInterval(refresh, 30000);
  });
})();
