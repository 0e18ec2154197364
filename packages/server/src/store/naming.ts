import {
  IdentifierNode,
  OperationNodeTransformer,
  SchemableIdentifierNode,
  sql,
  TableNode,
  type CreateIndexNode,
  type DropIndexNode,
  type KyselyPlugin,
  type PluginTransformQueryArgs,
  type PluginTransformResultArgs,
  type QueryResult,
  type ReferenceNode,
  type RootOperationNode,
  type SelectModifierNode,
  type UnknownRow,
  type RawBuilder,
  type QueryId,
} from 'kysely';
import { ConfigError } from '../errors.js';

/**
 * Where Rotor's tables live inside a database it shares with an application (issue 16, §4): a
 * PostgreSQL schema, a prefix for every name Rotor creates, or both.
 */
export interface TableNaming {
  /**
   * PostgreSQL: the schema that holds every Rotor table, index, trigger function and the migration
   * bookkeeping (`ROTOR_DATABASE_SCHEMA`); created by the migrations if missing. Default: the
   * connection's `search_path` (usually `public`).
   */
  schema?: string | undefined;
  /**
   * Put before every table and index name Rotor creates (`ROTOR_TABLE_PREFIX`, e.g. `rotor_` →
   * `rotor_users`, `rotor_sessions`), so an application's own `users` or `sessions` never collide.
   * Default: none.
   */
  tablePrefix?: string | undefined;
}

/** Schema names and prefixes are spliced into SQL as identifiers: plain ones only. */
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
const PREFIX = /^[A-Za-z0-9_]*$/;

/**
 * Rotor's names in one place. Code and migrations spell the logical names (`users`, `sessions`);
 * {@link RotorNames.plugin} turns every unqualified table and index into its physical name (the
 * prefix, then the schema), in built queries and in `sql.table()` inside raw SQL alike, so a new
 * table or index gets the naming without knowing of it. Names that are not tables (the trigger
 * functions, the `NOTIFY` channel) come from {@link RotorNames.object} and
 * {@link RotorNames.channel}.
 */
export class RotorNames {
  readonly schema: string | undefined;
  readonly prefix: string;

  constructor(naming: TableNaming = {}) {
    const schema = naming.schema || undefined;
    const prefix = naming.tablePrefix ?? '';
    if (schema !== undefined && !IDENTIFIER.test(schema)) {
      throw new ConfigError(
        'ROTOR_DATABASE_SCHEMA',
        `${JSON.stringify(schema)} is not a plain schema name: use letters, digits and _, not starting with a digit`,
      );
    }
    if (!PREFIX.test(prefix)) {
      throw new ConfigError(
        'ROTOR_TABLE_PREFIX',
        `${JSON.stringify(prefix)} is not a plain table prefix: use letters, digits and _ (e.g. rotor_)`,
      );
    }
    this.schema = schema;
    this.prefix = prefix;
  }

  /** Whether Rotor's names are the plain ones (no schema, no prefix): no plugin needed. */
  get plain(): boolean {
    return this.schema === undefined && this.prefix === '';
  }

  /** The physical, unqualified name of a logical table or index: `users` → `rotor_users`. */
  table(name: string): string {
    return this.prefix + name;
  }

  /** A schema-level object Rotor creates that is not a table (a trigger function), qualified. */
  object(name: string): RawBuilder<unknown> {
    return this.schema === undefined
      ? sql.id(this.prefix + name)
      : sql.id(this.schema, this.prefix + name);
  }

  /**
   * The `LISTEN`/`NOTIFY` channel of session-state changes: `rotor_session_state` by default, and
   * distinct per schema and prefix, so two Rotors in one database never hear each other.
   */
  get channel(): string {
    return `${this.schema === undefined ? '' : `${this.schema}.`}${this.prefix}rotor_session_state`;
  }

  /** The Kysely plugin that renames tables and indexes; a no-op for plain names. */
  get plugin(): KyselyPlugin {
    return new RenameTablesPlugin(this);
  }
}

/** Renames every unqualified table and index node (see {@link RotorNames}). */
class RenameTablesPlugin implements KyselyPlugin {
  readonly #transformer: RenameTablesTransformer;

  constructor(names: RotorNames) {
    this.#transformer = new RenameTablesTransformer(names);
  }

  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    return this.#transformer.transformNode(args.node, args.queryId);
  }

  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    return args.result;
  }
}

/**
 * A table in a `FROM`, `JOIN`, `INSERT INTO`, `CREATE TABLE`, `REFERENCES` or `sql.table()` gets
 * the prefix and the schema; a table that qualifies a column (`sessions.id`, `selectAll('users')`)
 * or a row lock (`FOR UPDATE OF sessions`) names the from-item, so it gets the prefix only. Names
 * already qualified with a schema are left alone (the application's, or PostgreSQL's catalogs).
 * Rotor's queries use no common table expressions through the builder (the one recursive query is
 * raw SQL, whose CTE name is plain text), so none needs sparing.
 */
class RenameTablesTransformer extends OperationNodeTransformer {
  readonly #names: RotorNames;

  constructor(names: RotorNames) {
    super();
    this.#names = names;
  }

  protected override transformTable(node: TableNode): TableNode {
    if (node.table.schema) return node;
    const name = this.#names.table(node.table.identifier.name);
    const schema = this.#names.schema;
    return schema === undefined ? TableNode.create(name) : TableNode.createWithSchema(schema, name);
  }

  protected override transformReference(node: ReferenceNode, queryId?: QueryId): ReferenceNode {
    const transformed = super.transformReference(node, queryId);
    return node.table ? { ...transformed, table: this.#fromItem(node.table) } : transformed;
  }

  protected override transformSelectModifier(
    node: SelectModifierNode,
    queryId?: QueryId,
  ): SelectModifierNode {
    const transformed = super.transformSelectModifier({ ...node, of: undefined }, queryId);
    return {
      ...transformed,
      of: node.of?.map((item) =>
        TableNode.is(item) ? this.#fromItem(item) : this.transformNode(item, queryId),
      ),
    };
  }

  protected override transformCreateIndex(
    node: CreateIndexNode,
    queryId?: QueryId,
  ): CreateIndexNode {
    return { ...super.transformCreateIndex(node, queryId), name: this.#index(node.name) };
  }

  protected override transformDropIndex(node: DropIndexNode, queryId?: QueryId): DropIndexNode {
    const transformed = super.transformDropIndex(node, queryId);
    if (node.name.schema) return transformed;
    const name = this.#names.table(node.name.identifier.name);
    const schema = this.#names.schema;
    return {
      ...transformed,
      name:
        schema === undefined
          ? SchemableIdentifierNode.create(name)
          : SchemableIdentifierNode.createWithSchema(schema, name),
    };
  }

  /** The name a table has as a from-item: prefixed, unqualified. */
  #fromItem(node: TableNode): TableNode {
    return node.table.schema
      ? node
      : TableNode.create(this.#names.table(node.table.identifier.name));
  }

  /** An index is created in its table's schema: prefixed only. */
  #index(node: IdentifierNode): IdentifierNode {
    return IdentifierNode.create(this.#names.table(node.name));
  }
}
