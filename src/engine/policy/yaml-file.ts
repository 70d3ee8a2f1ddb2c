/**
 * The schema-less entry of the YAML reader under its former name, for `src/cli/policy-tests.ts`, which
 * still reads its cases by hand; this module goes when that file reads them through `readYaml`.
 */
export { parseYaml as parseYamlFile, type YamlDocument as YamlFile, type YamlPath } from './yaml-reader.js'
