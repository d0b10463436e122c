// Small shared pieces: the config context, an action button that reports its outcome,
// state badges, and the page heading.
import { createContext, type ComponentChildren } from 'preact';
import { useContext, useState } from 'preact/hooks';
import { stateName, type Config } from './api';

export const ConfigContext = createContext<Config | null>(null);

export const useReadOnly = (): boolean => useContext(ConfigContext)?.readOnly ?? true;

export function Heading({ children }: { children: ComponentChildren }) {
  return <h1 tabIndex={-1}>{children}</h1>;
}

export function StateBadge({ state }: { state?: string }) {
  const name = stateName(state);
  return <span class={`state state-${name}`}>{name}</span>;
}

/**
 * A button for one action. Hidden in read-only mode (the server refuses the action
 * too). While the action runs the button is disabled; its error is announced.
 */
export function ActionButton(props: {
  label: string;
  run: () => Promise<unknown>;
  onDone?: () => void;
  describedBy?: string;
  danger?: boolean;
}) {
  const readOnly = useReadOnly();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  if (readOnly) return null;
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
