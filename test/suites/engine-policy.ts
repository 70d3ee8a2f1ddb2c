import { runGroup } from '../helpers/test-groups.js'

await runGroup('engine-policy')
