import { Type, type Static } from 'typebox'
import { ATTRIBUTE, REQUEST_VALUES, requestSource, type DeclaredRequestMapping, type RequestSource } from '../request-mapping.js'
import { readYamlDocument, type YamlDocument } from '../yaml-reader.js'

const escape = (path: string) => path.replace(/\./g, '\\.')
/** What request.yaml can give a field, in words: the fixed values, then the attributes by name. */
const VALUES_IN_WORDS = `${REQUEST_VALUES.join(', ')}, subject.attributes.<name> or resource.attributes.<name>`

/** request.yaml as written: Casbin request field → the request value it receives. */
export const RequestFileSchema = Type.Record(
  Type.String(),
  Type.String({
    pattern: `^(?:${REQUEST_VALUES.map(escape).join('|')})$|${ATTRIBUTE.source}`,
    patternErrorMessage: `must be a request value: ${VALUES_IN_WORDS}`,
  }),
  {
    propertyNames: { pattern: '^[A-Za-z_]\\w*$', patternErrorMessage: 'must be a Casbin request field name (a letter or _, then letters, digits or _)' },
    title: 'request.yaml',
    description: "Which request value each request field of the zt-pdp policy directory's model.conf receives.",
  },
)

type RequestFile = Static<typeof RequestFileSchema>

/** Parses request.yaml (`field: path` per line); problems are PolicyFileErrors naming file and line. */
export function parseRequestMapping(text: string, file = 'request.yaml'): DeclaredRequestMapping {
  const doc: YamlDocument<RequestFile> = readYamlDocument(RequestFileSchema, text, file)
  const fields = new Map<string, { source: RequestSource; line: number | undefined }>()
  for (const [field, path] of Object.entries(doc.value)) {
    const found = requestSource(path)
    // The pattern lets through attribute names that lead to prototypes, not data.
    if (!found) doc.fail([field], `must be a request value: ${VALUES_IN_WORDS} (got ${JSON.stringify(path)})`)
    fields.set(field, { source: found, line: doc.lineOf([field]) })
  }
  return { file, fields }
}
