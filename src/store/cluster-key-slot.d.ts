// The package (already ioredis' own dependency) ships no types; this is the one function the Redis driver uses.
declare module 'cluster-key-slot' {
  /** The Redis Cluster hash slot (0-16383) of a key: of its hash tag when it has one, of the whole key otherwise. */
  export default function calculateSlot(key: string): number
}
