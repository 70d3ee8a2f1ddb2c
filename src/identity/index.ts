import type { Gate } from '../engine/ports.js'
import { grantGate } from './grants.js'
import { revocationGate } from './revocation.js'
import { sessionGate } from './sessions.js'

/** The identity checks every decision runs, in order: revocation first, so a revoked session never counts as activity. */
export const identityGates: Gate[] = [revocationGate, sessionGate, grantGate]
