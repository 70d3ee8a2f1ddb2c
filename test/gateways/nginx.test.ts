import t from 'tap'
import { NGINX, runLive } from './live.js'

// The shipped examples/nginx/nginx.conf in real NGINX, in front of an echo upstream and the PDP, replaying the corpus.
await runLive(t, NGINX)
