// A graphql-ws client (the reference implementation of graphql-transport-ws) subscribed to
// `notifications` and `systemAnnouncements` on the gateway's /graphql.
// Usage: node js/subscribe.mjs WS_URL TOKEN MARKER
//   prints "acked", then one JSON line per message received; exits 0 once both
//   subscriptions delivered a message whose data.marker is MARKER. On a close before that,
//   prints {"closed": code, "reason": ...} and exits 3.
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const [url, token, marker] = process.argv.slice(2);
const client = createClient({
  url,
  webSocketImpl: WebSocket,
  connectionParams: { Authorization: `Bearer ${token}` },
  retryAttempts: 0,
  lazy: false,
  on: {
    connected: () => console.log('acked'),
    closed: (event) => {
      console.log(JSON.stringify({ closed: event.code, reason: event.reason }));
      process.exit(3);
    },
  },
});

const seen = new Set();
for (const field of ['notifications', 'systemAnnouncements']) {
  client.subscribe(
    { query: `subscription { ${field} { messageId channel type data timestamp userId } }` },
    {
      next: (result) => {
        console.log(JSON.stringify({ field, result }));
        if (result.data && result.data[field].data && result.data[field].data.marker === marker) {
          seen.add(field);
          if (seen.size === 2) { client.dispose(); process.exit(0); }
        }
      },
      error: (error) => { console.log(JSON.stringify({ field, error })); process.exit(4); },
      complete: () => {},
    },
  );
}
setTimeout(() => { console.log('timeout'); process.exit(5); }, 30000);
