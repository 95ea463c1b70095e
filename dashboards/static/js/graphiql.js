// GraphiQL (development profile only), from the gateway's own copy of its packages. A
// dashboards sign-in in this tab fills in the Authorization header.
import * as session from './session.js';

const token = session.current()?.token;
const fetcher = window.GraphiQL.createFetcher({ url: '/graphql' });
const root = window.ReactDOM.createRoot(document.getElementById('graphiql'));
root.render(
  window.React.createElement(window.GraphiQL, {
    fetcher,
    defaultHeaders: JSON.stringify(token ? { authorization: `Bearer ${token}` } : {}, null, 2),
    defaultEditorToolsVisibility: 'headers',
    shouldPersistHeaders: false,
  }),
);
