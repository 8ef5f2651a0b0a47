// Drives the GraphiQL page of the gateway in a running headless Chromium over the DevTools
// protocol, as a person would: put a token in the Headers tab, type `{ me { email } }` in
// the query editor, press the run button, read the result pane.
// Usage: node js/graphiql_me.mjs DEVTOOLS_PORT GATEWAY_URL TOKEN  -> prints the result text
import WebSocket from 'ws';

const [port, gateway, token] = process.argv.slice(2);
const targets = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
const page = targets.find((t) => t.type === 'page');
const ws = new WebSocket(page.webSocketDebuggerUrl);
await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });

let nextId = 0;
const pending = new Map();
ws.on('message', (raw) => {
  const msg = JSON.parse(raw);
  if (msg.id && pending.has(msg.id)) { pending.get(msg.id)(msg); pending.delete(msg.id); }
});
const send = (method, params = {}) => new Promise((resolve) => {
  const id = ++nextId;
  pending.set(id, resolve);
  ws.send(JSON.stringify({ id, method, params }));
});
const evaluate = async (expression) => {
  const answer = await send('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true });
  return answer.result?.result?.value;
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const until = async (expression, what, ms = 30000) => {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(100)) {
    const value = await evaluate(expression);
    if (value) return value;
  }
  throw new Error(`timed out waiting for ${what}: ${await evaluate('document.body && document.body.innerText.slice(0, 500)')}`);
};

await send('Page.enable');
await send('Runtime.enable');
await send('Page.navigate', { url: `${gateway}/graphql` });
const QUERY = `document.querySelector('.graphiql-query-editor .CodeMirror')`;
const HEADERS = `document.querySelector('.graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror')`;
await until(`!!(${QUERY} && ${HEADERS} && document.querySelector('.graphiql-execute-button'))`, 'GraphiQL to render');
// Type into the editors (CodeMirror's own API, so GraphiQL sees ordinary edits), then run.
const headers = JSON.stringify({ Authorization: `Bearer ${token}` }, null, 2);
await evaluate(`${QUERY}.CodeMirror.setValue('{ me { email } }'); ${HEADERS}.CodeMirror.setValue(${JSON.stringify(headers)}); true`);
await evaluate(`document.querySelector('.graphiql-execute-button').click(); true`);
const text = await until(`(() => { const r = document.querySelector('.result-window'); return r && r.innerText.includes('"email"') ? r.innerText : ''; })()`, 'the result');
console.log(text);
ws.close();
process.exit(0);
