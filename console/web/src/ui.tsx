// Small shared pieces: the session context (config and what the signed-in credential
// may do), an action button that reports its outcome, state badges, and the page
// heading.
import { createContext, type ComponentChildren } from 'preact';
import { useContext, useState } from 'preact/hooks';
import { stateName, type Config, type May, type Whoami } from './api';

export interface Session { config: Config; whoami: Whoami }
export const SessionContext = createContext<Session | null>(null);

/**
 * Whether the signed-in credential may do `action`, as the broker answered (false in
 * read-only mode). The page hides what is not allowed; the broker decides anyway.
 */
export const useMay = (action: keyof May): boolean => useContext(SessionContext)?.whoami.may[action] ?? false;

export function Heading({ children }: { children: ComponentChildren }) {
  return <h1 tabIndex={-1}>{children}</h1>;
}

export function StateBadge({ state }: { state?: string }) {
  const name = stateName(state);
  return <span class={`state state-${name}`}>{name}</span>;
}

/**
 * A button for one action. Absent when the credential may not do `may` (or the console
 * is read-only): the server refuses the action too. While the action runs the button
 * is disabled; its error is announced.
 */
export function ActionButton(props: {
  may: keyof May;
  label: string;
  run: () => Promise<unknown>;
  onDone?: () => void;
  describedBy?: string;
  danger?: boolean;
}) {
  const allowed = useMay(props.may);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  if (!allowed) return null;
  const click = async () => {
    setBusy(true);
    setError('');
    try {
      await props.run();
      props.onDone?.();
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <span class="action">
      <button type="button" class={props.danger ? 'danger' : undefined} disabled={busy} onClick={click}
        aria-describedby={props.describedBy}>
        {props.label}
      </button>
      {error && (
        <span role="alert" class="error">
          {error}
        </span>
      )}
    </span>
  );
}

export function ErrorNote({ error }: { error: string }) {
  return error ? (
    <p role="alert" class="error">
      {error}
    </p>
  ) : null;
}
