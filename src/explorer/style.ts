/** The explorer's style sheet, served as /ui/assets/explorer.css (the CSP allows no inline style). */
export const EXPLORER_CSS = `
:root { --fg: #1b1f24; --muted: #4a5360; --line: #c9d1da; --bg: #f6f8fa; --card: #ffffff; --accent: #0a4d9c;
  --allow: #0b6b2b; --deny: #a4161a; --step: #7a4100; --changed: #fff3bf; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
.top { display: flex; flex-wrap: wrap; align-items: baseline; gap: .5rem 1rem; padding: .6rem 1rem; background: #15263d; color: #fff; }
.top h1 { font-size: 1.15rem; margin: 0; }
.top .muted { color: #d5dde8; margin: 0; }
main { padding: 1rem; max-width: 1400px; margin: 0 auto; }
h2 { font-size: 1.1rem; margin: 0 0 .6rem; }
h3 { font-size: 1rem; margin: .8rem 0 .4rem; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 1rem; margin-bottom: 1rem; min-width: 0; }
.narrow { max-width: 32rem; margin: 2rem auto; }
.muted { color: var(--muted); }
.error { color: var(--deny); font-weight: 600; white-space: pre-wrap; overflow-wrap: anywhere; }
label { display: block; font-weight: 600; margin: .5rem 0 .2rem; }
input, select, textarea, button { font: inherit; }
input, select, textarea { width: 100%; padding: .4rem .5rem; border: 1px solid #8592a3; border-radius: 4px; background: #fff; color: var(--fg); }
textarea { font-family: ui-monospace, monospace; font-size: 13px; min-height: 9rem; }
textarea.tall { min-height: 16rem; }
input[type=checkbox], input[type=radio] { width: auto; margin-right: .3rem; }
button { padding: .45rem .9rem; border: 1px solid var(--accent); border-radius: 4px; background: var(--accent); color: #fff; cursor: pointer; margin-top: .6rem; }
button.secondary { background: #fff; color: var(--accent); }
button.small { padding: .15rem .5rem; margin: 0; font-size: .85rem; }
button:focus-visible, input:focus-visible, select:focus-visible, textarea:focus-visible, a:focus-visible { outline: 3px solid #f0b400; outline-offset: 1px; }
nav.tabs { display: flex; flex-wrap: wrap; gap: .3rem; margin-bottom: 1rem; }
nav.tabs button { margin: 0; background: #fff; color: var(--accent); }
nav.tabs button[aria-current=page] { background: var(--accent); color: #fff; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 24rem), 1fr)); gap: 1rem; align-items: start; }
.fields { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 11rem), 1fr)); gap: 0 .8rem; }
fieldset { border: 1px solid var(--line); border-radius: 4px; margin: .5rem 0; padding: .3rem .8rem .6rem; }
legend { font-weight: 600; }
.inline label { display: inline; font-weight: normal; margin-right: 1rem; }
.verdict { display: inline-block; padding: .2rem .7rem; border-radius: 999px; color: #fff; font-weight: 700; }
.verdict.allow { background: var(--allow); }
.verdict.deny { background: var(--deny); }
.verdict.step_up { background: var(--step); }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; }
th, td { text-align: left; padding: .3rem .45rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: #eef1f5; }
td code, .mono { font-family: ui-monospace, monospace; font-size: 12.5px; overflow-wrap: anywhere; }
ul.plain { list-style: none; padding: 0; margin: 0; }
.tag { display: inline-block; padding: 0 .4rem; margin: 0 .2rem .2rem 0; border: 1px solid var(--line); border-radius: 3px; background: #eef1f5; font-size: .85rem; }
.changed { background: var(--changed); }
.diff-list li { margin-bottom: .3rem; }
.status-ok { color: var(--allow); font-weight: 600; }
svg text { font: 12px system-ui, sans-serif; fill: var(--fg); }
svg .bar-pos { fill: #b3261e; }
svg .bar-neg { fill: #1f7a3a; }
svg .axis { stroke: #6b7684; }
svg .v-allow { fill: var(--allow); }
svg .v-deny { fill: var(--deny); }
svg .v-step_up { fill: #b86b00; }
.legend span { margin-right: .8rem; }
.sw { display: inline-block; width: .8rem; height: .8rem; margin-right: .25rem; vertical-align: -1px; }
.sw.allow { background: var(--allow); }
.sw.deny { background: var(--deny); }
.sw.step_up { background: #b86b00; }
[hidden] { display: none !important; }
.sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
`
