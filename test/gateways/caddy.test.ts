import t from 'tap'
import { CADDY, runLive } from './live.js'

// The shipped examples/caddy/Caddyfile in real Caddy, in front of an echo upstream and the PDP, replaying the corpus.
await runLive(t, CADDY)
