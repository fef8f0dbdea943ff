// Type-checks the committed dashboards against Grafana's published
// dashboard schema (@grafana/schema): npm ci && npx tsc --noEmit -p .
//
// Relaxation, and why: TypeScript types an imported JSON file with widened
// primitives ("mode": "absolute" becomes string, not the enum
// ThresholdsMode), so no JSON file can ever be assigned to Dashboard as it
// is. Schema<T> below widens exactly that — every string enum or literal
// union to string, every numeric enum to number — and keeps everything else
// of the schema: which fields are required, their nesting, arrays versus
// objects, string versus number versus boolean. Enum values themselves are
// checked by the Go tests of this directory (datasource types, panel types,
// threshold modes), not here.
import type { Dashboard } from '@grafana/schema';

import overview from '../grafana/migration-overview.json' with { type: 'json' };
import routeDetail from '../grafana/route-detail.json' with { type: 'json' };

type Schema<T> =
  T extends string ? string
  : T extends number ? number
  : T extends boolean ? boolean
  : T extends null | undefined ? T
  : T extends readonly (infer U)[] ? Schema<U>[]
  : T extends object ? { [K in keyof T]: Schema<T[K]> }
  : T;

export const dashboards: Schema<Dashboard>[] = [overview, routeDetail];
