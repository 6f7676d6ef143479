import { useState } from 'preact/hooks';
import { login } from '../auth.js';

// The login form: a user name and password from the scheduler's
// credentials file. The answer sets the session cookie; a refusal is
// shown as the scheduler words it.
export function LoginPage() {
  const [user, setUser] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await login(user, password);
    } catch (err) {
      setError(err.message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="login" onSubmit={submit} data-testid="login-form">
      <h1>Log in to Drover</h1>
      <label>
        User
        <input
          name="user"
          autocomplete="username"
          value={user}
          onInput={(e) => setUser(e.currentTarget.value)}
          data-testid="login-user"
        />
      </label>
      <label>
        Password
        <input
          name="password"
          type="password"
          autocomplete="current-password"
          value={password}
          onInput={(e) => setPassword(e.currentTarget.value)}
          data-testid="login-password"
        />
      </label>
      <button type="submit" disabled={busy || !user} data-testid="login-submit">
        Log in
      </button>
      {error && (
        <p class="error" data-testid="login-error">
          {error}
        </p>
      )}
    </form>
  );
}
