import t from 'tap'
import { fixture, replay } from './corpus.js'
import { CADDY, NGINX, runLive } from './live.js'
import { envoy, traefik } from './shapes.js'

// Every gateway in one test process (one file each paid tap's, tsx's and the app's start-up again).

// The shipped examples/nginx/nginx.conf and examples/caddy/Caddyfile in real NGINX and Caddy, in front of an echo
// upstream and the PDP, replaying the corpus.
void runLive(t, NGINX)
void runLive(t, CADDY)

// Traefik and Envoy cannot be installed here: the corpus goes to the real PDP and the echo upstream in the
// request shape each one's documentation describes, with the header lists and time-outs of the shipped examples.
for (const [name, gateway] of [['traefik', traefik], ['envoy', envoy]] as const) {
  void t.test(`${name} (request shape, examples/${name})`, async (t) => {
    const f = await fixture(t)
    await replay(t, name, f, async (state) => gateway({ pdp: await f.pdpPortFor(state), upstream: f.upstreamPort }))
  })
}
