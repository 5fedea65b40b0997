import { el, mount } from "./dom.js";
import { post, ApiError } from "./api.js";
import { passwordRules, explain } from "./format.js";

function field(label, input) {
  return el("label.field", {}, el("span", { text: label }), input);
}

function errorBox() { return el("p.error", { role: "alert", hidden: true }); }
function showError(box, err) {
  box.hidden = false;
  box.textContent = err instanceof ApiError ? explain(err.code, err.detail) : String(err.message || err);
}

export function loginView(main, onSession) {
  const email = el("input", { type: "email", name: "email", autocomplete: "username", required: true });
  const password = el("input", { type: "password", name: "password", autocomplete: "current-password", required: true });
  const error = errorBox();
  const form = el("form.card#login-form", {
    on: {
      submit: async (e) => {
        e.preventDefault();
        try { onSession(await post("/auth/session", { email: email.value, password: password.value })); }
        catch (err) { showError(error, err); }
      },
    },
  }, el("h1", { text: "Log in" }), field("E-mail", email), field("Password", password), error,
  el("button", { type: "submit", text: "Log in" }),
  el("p.muted", {}, "No account? ", el("a", { href: "#/register", text: "Register" })));

  const token = el("input", { type: "password", name: "adminToken", autocomplete: "off", required: true });
  const opError = errorBox();
  const opForm = el("form.card.subtle#operator-form", {
    on: {
      submit: async (e) => {
        e.preventDefault();
        try { onSession(await post("/auth/session", { adminToken: token.value })); }
        catch (err) { showError(opError, err); }
      },
    },
  }, el("h2", { text: "Operator" }), el("p.muted", { text: "Sign in with the coordinator's admin token (coordinator.admin_token)." }),
  field("Admin token", token), opError, el("button.secondary", { type: "submit", text: "Open the operator view" }));
  mount(main, el("div.auth", {}, form, opForm));
  email.focus();
}

export function registerView(main, onRegistered) {
  const email = el("input", { type: "email", name: "email", autocomplete: "username", required: true });
  const name = el("input", { type: "text", name: "name", autocomplete: "name" });
  const password = el("input", { type: "password", name: "password", autocomplete: "new-password", required: true });
  const rules = el("ul.rules#password-rules");
  const submit = el("button", { type: "submit", text: "Create account", disabled: true });
  const error = errorBox();
  const check = () => {
    const result = passwordRules(password.value);
    mount(rules, result.map((r) => el(`li.${r.ok ? "ok" : "missing"}`, { text: `${r.ok ? "✓" : "✗"} ${r.text}` })));
    submit.disabled = !result.every((r) => r.ok);
  };
  password.addEventListener("input", check);
  check();
  const form = el("form.card#register-form", {
    on: {
      submit: async (e) => {
        e.preventDefault();
        try {
          await post("/auth/register", { email: email.value, password: password.value, name: name.value });
          onRegistered(await post("/auth/session", { email: email.value, password: password.value }));
        } catch (err) { showError(error, err); }
      },
    },
  }, el("h1", { text: "Create an account" }), field("E-mail", email), field("Name (optional)", name),
  field("Password", password), el("p.muted", { text: "The password needs:" }), rules, error, submit,
  el("p.muted", {}, "Already registered? ", el("a", { href: "#/login", text: "Log in" })));
  mount(main, el("div.auth", {}, form));
  email.focus();
}
