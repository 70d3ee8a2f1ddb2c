import { runGroup } from '../helpers/test-groups.js'

await runGroup('routes')
