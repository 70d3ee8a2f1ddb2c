import { normaliseIp } from '../engine/ip-address.js'
import type { StateStore } from '../engine/ports.js'
import { responseKeys } from './keys.js'
import { isActive, readRestriction, type Restriction } from './restrictions.js'

export interface SubjectRestrictions {
  locked?: Restriction
  frozen?: Restriction
  stepUp?: Restriction
}

export const SUBJECT_RESTRICTIONS = ['lock', 'freeze', 'step-up'] as const
export type SubjectRestrictionKind = (typeof SUBJECT_RESTRICTIONS)[number]

const subjectKey = (kind: SubjectRestrictionKind, subject: string) =>
  kind === 'lock' ? responseKeys.lock(subject) : kind === 'freeze' ? responseKeys.freeze(subject) : responseKeys.stepUp(subject)

/** The restrictions in force for a subject now (expired ones are left out). */
export async function subjectRestrictions(store: StateStore, subject: string, now: number): Promise<SubjectRestrictions> {
  const batch = store.batch()
  const lock = batch.get(responseKeys.lock(subject))
  const freeze = batch.get(responseKeys.freeze(subject))
  const stepUp = batch.get(responseKeys.stepUp(subject))
  await batch.exec()
  const out: SubjectRestrictions = {}
  const locked = readRestriction(lock.value)
  const frozen = readRestriction(freeze.value)
  const stepped = readRestriction(stepUp.value)
  if (isActive(locked, now)) out.locked = locked
  if (isActive(frozen, now)) out.frozen = frozen
  if (isActive(stepped, now)) out.stepUp = stepped
  return out
}

/** Lifts one restriction; resolves whether there was one. */
export async function liftSubjectRestriction(store: StateStore, subject: string, kind: SubjectRestrictionKind): Promise<boolean> {
  const batch = store.batch()
  const removed = batch.del(subjectKey(kind, subject))
  await batch.exec()
  return removed.value > 0
}

export async function addressRestriction(store: StateStore, ip: string, now: number): Promise<Restriction | undefined> {
  const batch = store.batch()
  const raw = batch.get(responseKeys.ip(normaliseIp(ip)))
  await batch.exec()
  const restriction = readRestriction(raw.value)
  return isActive(restriction, now) ? restriction : undefined
}

export async function liftAddressRestriction(store: StateStore, ip: string): Promise<boolean> {
  const batch = store.batch()
  const removed = batch.del(responseKeys.ip(normaliseIp(ip)))
  await batch.exec()
  return removed.value > 0
}
